"""What native libraries print to the process's stderr: dropped unless ``-v`` asks for it.

Some libraries under vpimage's readers write straight to file descriptor 2, outside
Python's logging and warnings: FFmpeg (under OpenCV) its complaints about a broken video,
OpenCV's own AVI reader about a damaged chunk list, pylibjpeg-rle a Rust panic's message
(a backtrace too where ``RUST_BACKTRACE`` is set). The error that follows names the file
and the reason in one line, and that one line is what the user is to see.

So, for the command's run, descriptor 2 goes to the null device while Python's
``sys.stderr`` (vpimage's own lines, warnings, logging, an uncaught traceback) and the
fault handler (a crash in native code) write to a duplicate of it. Where ``sys.stderr`` is
not the process's descriptor 2 (captured in a test or a notebook) nothing is changed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
from typing import Iterator

__all__ = ["native_output_dropped"]


def _is_descriptor_2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def native_output_dropped() -> Iterator[None]:
    """Run the block with what native code writes to descriptor 2 dropped, and Python's
    ``sys.stderr`` still shown (see the module docstring)."""
    previous = sys.stderr
    if not _is_descriptor_2(previous):
        yield
        return
    previous.flush()
    shown = open(os.dup(2), "w", encoding=previous.encoding, errors=previous.errors, buffering=1)  # noqa: SIM115
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    sys.stderr = shown
    handled = faulthandler.is_enabled()
    faulthandler.enable(shown)
    try:
        yield
    finally:
        shown.flush()
        os.dup2(shown.fileno(), 2)
        sys.stderr = previous
        if handled:
            faulthandler.enable(previous)
        else:
            faulthandler.disable()
        shown.close()
