"""The command line's shared behaviour: help, version, usage errors, exit statuses."""

import subprocess
import sys

import pytest

from vpimage import __version__
from vpimage.cli import _COMMANDS, main


def test_version_through_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "vpimage", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"vpimage {__version__}"


@pytest.mark.parametrize("command", _COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_unknown_subcommand_is_bad_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
