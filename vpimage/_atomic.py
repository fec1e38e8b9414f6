"""Atomic file writing: a reader sees the old file or the whole new one, never a part.

Shared by the writers of results (:mod:`vpimage.outputs`, ``evaluate``, ``export``) and
the phantom's (:mod:`vpimage.synth`), which imports nothing of the analysis. A file or
folder that cannot be written raises :class:`~vpimage.errors.OutputError` naming it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from os import PathLike
from pathlib import Path
from typing import Iterator

from vpimage.errors import OutputError

__all__ = ["atomic_path", "make_folder", "remove_file", "write_bytes_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``.

    The temporary file keeps ``path``'s suffix (writers such as OpenCV's pick the format
    from it). If the body raises, the temporary file is removed and ``path`` is untouched;
    an ``OSError`` (no such folder, no permission, disk full) becomes an ``OutputError``.
    """
    path = Path(path)
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
    try:
        # Created like any new file (mode 0o666 less the umask), unlike mkstemp's 0o600.
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield temp
        os.replace(temp, path)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(path, f"cannot be written: {error.strerror or error}") from error
        raise


def write_bytes_atomic(path: str | PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as temp:
        with open(temp, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())


def write_text_atomic(path: str | PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def make_folder(path: str | PathLike) -> Path:
    """Create the folder ``path`` (and its parents) if missing; return it as a ``Path``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(path, f"cannot be made a folder: {error.strerror or error}") from None
    return path


def remove_file(path: str | PathLike) -> None:
    """Remove the file ``path`` if there is one; one that cannot be removed (a folder of
    that name, no permission) raises :class:`~vpimage.errors.OutputError` naming it."""
    path = Path(path)
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise OutputError(path, f"cannot be removed: {error.strerror or error}") from None
