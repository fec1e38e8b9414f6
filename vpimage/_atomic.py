"""Atomic file writing: a reader sees the old file or the whole new one, never a part.

Shared by the writers of results (:mod:`vpimage.outputs`, ``evaluate``, ``export``) and
the phantom's (:mod:`vpimage.synth`), which imports nothing of the analysis. A file or
folder that cannot be written raises :class:`~vpimage.errors.OutputError` naming it.
:func:`all_or_none` makes the files written in its body a set: all take their place, or none.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
from contextvars import ContextVar
from os import PathLike
from pathlib import Path
from typing import Iterator

from vpimage.errors import OutputError

__all__ = [
    "all_or_none",
    "atomic_path",
    "folder_for_outputs",
    "make_folder",
    "remove_file",
    "write_bytes_atomic",
    "write_text_atomic",
]

# Random bytes in a temporary file's name.
_TOKEN_BYTES = 6

#: The moves (temporary file, destination) that the innermost :func:`all_or_none` holds back.
_held: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("vpimage_atomic_held", default=None)


@contextlib.contextmanager
def atomic_path(path: str | PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is flushed to disk and
    replaces ``path``. The temporary files of ``path`` a killed writer left go first.

    The temporary file keeps ``path``'s suffix (writers such as OpenCV's pick the format
    from it). If the body raises, the temporary file is removed and ``path`` is untouched;
    an ``OSError`` (no such folder, no permission, disk full) becomes an ``OutputError``.
    Inside :func:`all_or_none` the replacement waits for the end of its body. A folder at
    ``path`` is refused before the body runs (not when the file would replace it).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "cannot be written: it is a folder")
    _discard_left_behind(path)
    temp = path.parent / f".{path.name}.{secrets.token_hex(_TOKEN_BYTES)}.tmp{path.suffix}"
    try:
        # Created like any new file (mode 0o666 less the umask), unlike mkstemp's 0o600.
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield temp
        _flush_to_disk(temp)  # (before the rename: after a power loss, the old file or the whole new one)
    except BaseException as error:
        _discard(temp)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from error
        raise
    held = _held.get()
    if held is None:
        _replace(temp, path)
    else:
        held.append((temp, path))


@contextlib.contextmanager
def all_or_none() -> Iterator[None]:
    """Make the files that :func:`atomic_path` writes in the body a set: all or none.

    Each file is written whole to its temporary file as usual, but none replaces its
    destination before the body has ended: if the body raises, every temporary file is
    removed and no destination is touched; otherwise they replace theirs one after the
    other (a rename each, so a reader may see part of the set only for that instant).
    """
    held: list[tuple[Path, Path]] = []
    token = _held.set(held)
    try:
        yield
    except BaseException:
        for temp, _ in held:
            _discard(temp)
        raise
    finally:
        _held.reset(token)
    for index, (temp, path) in enumerate(held):
        try:
            _replace(temp, path)
        except OutputError:
            for rest, _ in held[index + 1 :]:
                _discard(rest)
            raise


def _replace(temp: Path, path: Path) -> None:
    """Move the temporary file ``temp`` onto ``path``; if it cannot be, remove it and raise
    an ``OutputError`` naming ``path``."""
    try:
        os.replace(temp, path)
    except OSError as error:
        _discard(temp)
        raise _cannot_write(path, error) from error


def _discard_left_behind(path: Path) -> None:
    """Remove the temporary files of ``path`` that a writer stopped before it could remove
    them left behind (killed, out of memory, a power loss), except those this process holds
    back for :func:`all_or_none`: a rerun that writes or removes ``path`` takes them away."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{{2 * _TOKEN_BYTES}}}\.tmp{re.escape(path.suffix)}")
    held = {temp for temp, _ in _held.get() or ()}
    with contextlib.suppress(OSError):  # (a folder that cannot be listed fails the write itself)
        for temp in path.parent.glob(f".{glob.escape(path.name)}.*"):
            if pattern.fullmatch(temp.name) and temp not in held:
                _discard(temp)


def _discard(temp: Path) -> None:
    """Remove the temporary file ``temp`` if there is one. A failure to (its folder is a
    file, no permission) is ignored: the error that stopped the write is the one to report."""
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)


def _cannot_write(path: Path, error: OSError) -> OutputError:
    """The system's reason, in one line: pydicom re-raises a write error with its own words
    and a whole traceback in the message, the system's reason at the end of its first line."""
    reason = error.strerror or (str(error).splitlines() or [type(error).__name__])[0]
    return OutputError(path, f"cannot be written: {reason}")


def _flush_to_disk(temp: Path) -> None:
    """Flush what the writer wrote to ``temp`` (closed or not: the system's copy) to the disk."""
    descriptor = os.open(temp, os.O_RDWR)  # (Windows commits only a file open for writing)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes_atomic(path: str | PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temp:
        with open(temp, "wb") as stream:
            stream.write(data)


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


@contextlib.contextmanager
def folder_for_outputs(path: str | PathLike) -> Iterator[Path]:
    """Make the folder ``path`` and its missing parents for what the block writes; on the way
    out, those it made that are still empty are removed again (deepest first), so that a run
    that fails leaves no empty folder behind."""
    path = Path(path)
    made = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        made.append(folder)
    make_folder(path)
    try:
        yield path
    finally:
        for folder in made:  # (one already removed, an output folder the block emptied, is passed)
            if folder.is_dir():
                if any(folder.iterdir()):
                    break
                folder.rmdir()


def remove_file(path: str | PathLike) -> None:
    """Remove the file ``path`` if there is one (and the temporary files a stopped writer of
    it left); one that cannot be removed (a folder of that name, no permission) raises
    :class:`~vpimage.errors.OutputError` naming it."""
    path = Path(path)
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise OutputError(path, f"cannot be removed: {error.strerror or error}") from None
    _discard_left_behind(path)
