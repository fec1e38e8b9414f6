"""Warnings on the command line: one line each, held until the work they concern is done.

A study that fails is reported in one line on standard error, its error naming the file
and the reason; the warnings that reading it raised on the way (files of a folder skipped,
a character set not known) would only add lines before it. So a study's warnings are held
while it is read and analysed, shown when it is done, and dropped when it fails.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator

__all__ = ["held_warnings", "show_warning"]


def show_warning(message, category=None, filename=None, lineno=None, file=None, line=None) -> None:
    """Print one warning as one line on standard error (a ``warnings.showwarning``)."""
    print(f"vpimage: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def held_warnings() -> Iterator[None]:
    """Hold the warnings raised inside; show each once when the block ends (a warning of
    every frame read, colour reduced to luminance, is one line), drop them when it raises.
    The filters in force (``--quiet`` ignores every warning) still apply."""
    with warnings.catch_warnings(record=True) as caught:
        yield
    for message in dict.fromkeys(str(warning.message) for warning in caught):
        show_warning(message)
