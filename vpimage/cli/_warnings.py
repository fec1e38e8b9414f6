"""Warnings on the command line: one line each, held until the work they concern is done.

A study that fails is reported in one line on standard error, its error naming the file
and the reason; the warnings that reading it raised on the way (files of a folder skipped,
a character set not known) would only add lines before it. So a study's warnings are held
while it is read and analysed, shown when it is done, and dropped when it fails.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator

from vpimage.errors import VpimageError

__all__ = ["held_warnings", "show_warning", "shown_text"]

_PACKAGE = Path(__file__).resolve().parents[1]
# A value quoted as Python quotes it: 'text', "text", b'bytes' (escapes within).
_QUOTED = re.compile(r"b?'(?:[^'\\]|\\.)*'" + r'|b?"(?:[^"\\]|\\.)*"')


def shown_text(message, filename: str | None = None) -> str:
    """The text of a warning as the command line shows it. Other libraries' warnings lose
    the values they quote: pydicom quotes an element's value it finds invalid, and a
    corrupted element can hold a patient's name or id. vpimage's own (raised from its
    package) quote only what is safe to show."""
    text = str(message)
    ours = filename is not None and Path(filename).resolve().is_relative_to(_PACKAGE)
    return text if ours else _QUOTED.sub("(a value, not shown)", text)


def show_warning(text: str) -> None:
    """Print one warning's text (see :func:`shown_text`) as one line on standard error."""
    print(f"vpimage: warning: {text}", file=sys.stderr)


@contextlib.contextmanager
def held_warnings() -> Iterator[list[Callable[[str], str]]]:
    """Hold the warnings raised inside; show each once when the block ends (a warning of
    every frame read, colour reduced to luminance, is one line), drop them when it raises.
    The filters in force (``--quiet`` ignores every warning) still apply.

    Yields a list: each function put in it (a study's ``shown_text`` once it is read, so that
    a folder named after the patient is shown by the study's key) rewrites every text held,
    and the message of a :class:`~vpimage.errors.VpimageError` that ends the block (a frame
    that cannot be decoded names its file)."""
    rewrites: list[Callable[[str], str]] = []

    def rewritten(text: str) -> str:
        return functools.reduce(lambda text, rewrite: rewrite(text), rewrites, text)

    with warnings.catch_warnings(record=True) as caught:
        try:
            yield rewrites
        except VpimageError as error:
            error.args = (rewritten(str(error)),)
            raise
    for text in dict.fromkeys(rewritten(shown_text(warning.message, warning.filename)) for warning in caught):
        show_warning(text)
