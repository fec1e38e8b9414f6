"""Path arguments of the library's functions, checked before anything opens them."""

from __future__ import annotations

import os
from pathlib import Path

from vpimage.errors import ArgumentError

__all__ = ["path_argument"]


def path_argument(value, what: str = "path") -> Path:
    """``value`` as a Path.

    Raises
    ------
    ArgumentError
        ``value`` is no str or PathLike (an int would be read as an open file descriptor,
        None fail deep inside), or is empty (which Path reads as the working folder).
    """
    if not isinstance(value, (str, os.PathLike)):
        raise ArgumentError(f"`{what}` must be a str or PathLike naming a file or folder; got {type(value).__name__}")
    if not os.fspath(value):
        raise ArgumentError(f"`{what}` is empty: it names no file or folder")
    return Path(value)
