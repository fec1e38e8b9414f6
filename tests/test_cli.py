"""The command line's shared behaviour: help, version, usage errors, exit statuses."""

import contextlib
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from vpimage import __version__
from vpimage.cli import _COMMANDS, main

# The real angiogram set lives in shared/ beside the repository (see its README).
WG04 = Path(__file__).resolve().parents[2] / "shared" / "data" / "wg04"


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


def test_an_interrupt_while_the_commands_load_costs_one_line(capsys, monkeypatch):
    # Ctrl-C in the first half second, as the subcommands' modules are imported: a
    # traceback and status 130 before; the interrupt's line and status 1, as later.
    import vpimage.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(vpimage.cli, "build_parser", interrupted)
    assert main(["analyze", "x.dcm", "--out", "out"]) == 1
    assert capsys.readouterr().err == "vpimage: interrupted\n"


def test_an_undecodable_file_costs_one_line_on_stderr():
    # XA1_JPLY.dcm: no installed decoder reads it; pydicom logs each failed plugin with a
    # traceback, but the user sees only vpimage's one line naming the file.
    out = subprocess.run(
        [sys.executable, "-m", "vpimage", "info", str(WG04 / "XA1_JPLY.dcm")], capture_output=True, text=True
    )
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "XA1_JPLY.dcm" in lines[0] and lines[0].startswith("vpimage: error: ")


@pytest.mark.parametrize("codec, suffix, unit", [("mp4v", ".mp4", "box"), ("MJPG", ".avi", "RIFF chunk")])
def test_a_broken_video_costs_one_line_on_stderr(codec, suffix, unit, tmp_path):
    # An mp4 or an MJPEG AVI cut in half is refused from its container's own lengths before
    # FFmpeg or OpenCV read it (they would print their own complaints straight to the
    # process's stderr): the user sees only vpimage's one line naming the file, with -v too.
    video = tmp_path / f"whole{suffix}"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*codec), 10.0, (64, 48), isColor=False)
    for level in range(0, 200, 10):
        writer.write(np.full((48, 64), level, np.uint8))
    writer.release()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    for argv in ([], ["-v"]):
        out = subprocess.run(
            [sys.executable, "-m", "vpimage", *argv, "info", str(cut)], capture_output=True, text=True
        )
        assert out.returncode == 3
        err = out.stderr.strip().splitlines()
        assert err[-1].startswith(f"vpimage: error: {cut}: the file is cut short: its {unit} at byte "), out.stderr
        assert len(err) == 1, out.stderr


@pytest.mark.parametrize("command", ["info", "export", "analyze"])
def test_a_study_that_fails_costs_one_line_even_where_reading_it_warned(command, tmp_path, capsys):
    # A folder whose only file is not DICOM: reading it warns that the file was skipped, and
    # then fails, saying so. The error alone is shown.
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    argv = {"info": ["info", "--json", str(folder)], "export": ["export", str(folder), "--out", str(tmp_path / "x.npz")],
            "analyze": ["analyze", str(folder), "--out", str(tmp_path / "out")]}[command]
    assert main(argv) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"vpimage: error: {folder}: holds no readable DICOM image (1 file(s) unreadable)"


def test_the_warnings_of_a_study_read_are_shown(tmp_path, capsys):
    video = tmp_path / "run.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48), isColor=False)
    for level in range(0, 200, 10):
        writer.write(np.full((48, 64), level, np.uint8))
    writer.release()
    assert main(["info", str(video)]) == 0
    assert capsys.readouterr().err == (f"vpimage: warning: {video}: a video has no calibration: millimetres are "
                                       "unknown (mm columns will be NaN)\n")


@pytest.mark.parametrize("command", ["analyze", "export", "synth"])
def test_an_output_that_cannot_be_written_costs_one_line_on_stderr(command, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    target = blocker / ("out.npz" if command == "export" else "out.dcm" if command == "synth" else "out")
    study = Path(__file__).resolve().parents[1] / "sample_dicom" / "no_leak" / "study.dcm"
    argv = {
        "analyze": ["analyze", str(study), "--out", str(target)],
        "export": ["export", str(study), "--out", str(target)],
        "synth": ["synth", "no_leak", "--out", str(target), "--size", "64", "--frames", "12"],
    }[command]
    out = subprocess.run([sys.executable, "-m", "vpimage", *argv], capture_output=True, text=True)
    assert out.returncode == 1  # (CONTRACT.md: 3 is bad input data; "1 anything else")
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"vpimage: error: {target.parent if command != 'analyze' else target}: cannot be ")


@pytest.mark.parametrize(
    ("flag", "option", "frame_of"),
    [
        ("--collimation-change", "collimation_change", lambda truth: truth["collimation"]["frame"]),
        ("--needle-withdrawal", "needle_withdrawal", lambda truth: (truth["needle"]["withdrawal"] or {}).get("frame")),
    ],
)
def test_synth_changes_during_the_injection_reach_the_phantom(tmp_path, flag, option, frame_of):
    outputs = {}
    for flags in ([], [flag]):
        run, truth = tmp_path / f"run{len(flags)}.dcm", tmp_path / f"truth{len(flags)}.json"
        assert main(["synth", "no_leak", "--out", str(run), "--truth", str(truth), "--frames", "12", "--size", "64",
                     "--seed", "2", "--field", "rectangle", *flags]) == 0
        outputs[bool(flags)] = (json.loads(truth.read_text()), pydicom.dcmread(run).pixel_array)
    assert frame_of(outputs[False][0]) is None
    k = frame_of(outputs[True][0])
    assert outputs[True][0]["options"][option] and 7 <= k <= 10
    np.testing.assert_array_equal(outputs[True][1][:k], outputs[False][1][:k])
    assert (outputs[True][1][k:] != outputs[False][1][k:]).any()


def test_synth_exposure_changes_reach_the_phantom(tmp_path):
    outputs = {}
    for flags in ([], ["--exposure-changes"]):
        run, truth = tmp_path / f"run{len(flags)}.dcm", tmp_path / f"truth{len(flags)}.json"
        assert main(["synth", "no_leak", "--out", str(run), "--truth", str(truth), "--frames", "12", "--size", "64",
                     "--seed", "2", *flags]) == 0
        outputs[bool(flags)] = json.loads(truth.read_text())
    assert outputs[False]["exposure"] == {"tube_output": [1.0] * 12, "step_frame": None}
    changed = outputs[True]["exposure"]
    assert outputs[True]["options"]["exposure_changes"] and changed["step_frame"] is not None
    assert len(set(changed["tube_output"])) == 12  # every pulse its own output


def test_log_lines_go_to_the_stderr_of_the_moment_not_that_of_an_earlier_run():
    earlier = io.StringIO()
    with contextlib.redirect_stderr(earlier):
        assert main(["info", "/no/such/study"]) == 3
    earlier.close()  # the stderr of a finished run, as a notebook cell or a test leaves it
    now = io.StringIO()
    with contextlib.redirect_stderr(now):
        logging.getLogger("vpimage.io").warning("a later warning")
    assert now.getvalue() == "vpimage: WARNING: vpimage.io: a later warning\n"
