"""What native code prints to descriptor 2 is dropped on the command line; Python's stderr
and a crash's report are not (vpimage.cli._native)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, sys
from vpimage.cli._native import native_output_dropped
with native_output_dropped():
    os.write(2, b"native line\\n")
    print("python line", file=sys.stderr)
    if sys.argv[1] == "crash":
        import ctypes
        ctypes.string_at(0)  # a crash in native code
os.write(2, b"native line after\\n")
"""


def run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True)


def test_native_lines_are_dropped_and_python_lines_shown():
    out = run("plain")
    assert out.returncode == 0
    assert out.stderr.splitlines() == ["python line", "native line after"]


def test_a_crash_in_native_code_is_still_reported():
    out = run("crash")
    assert out.returncode != 0
    assert "native line" not in out.stderr and "python line" in out.stderr
    assert "Fatal Python error: Segmentation fault" in out.stderr, out.stderr
