"""The exception tree of vpimage.

Every error that vpimage raises on purpose is a :class:`VpimageError`; the command line
catches it once and prints one line, and exits with its :attr:`~VpimageError.exit_status`
(CONTRACT.md: 3 for bad input, 1 for a result that cannot be written). Messages name the
file, the DICOM element where there is one, and the rule that was broken.
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "ArgumentError",
    "BackendUnavailableError",
    "ConfigError",
    "InvalidStudyError",
    "OutputError",
    "StudiesFailedError",
    "UnsupportedError",
    "VpimageError",
]


class VpimageError(Exception):
    """Base class of all errors raised on purpose by vpimage.

    Attributes
    ----------
    exit_status : int
        The command line's exit status for it: 3, bad input (unreadable, unsupported or
        inconsistent data, a bad option).
    """

    exit_status = 3


class _PathError(VpimageError):
    """An error about one file or folder; its message is ``"<path>: <reason>"``.

    Parameters
    ----------
    path : str or PathLike
        The file (or folder) at fault.
    reason : str
        What is wrong with it.
    """

    def __init__(self, path: str | PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InvalidStudyError(_PathError):
    """A file or folder cannot be read as a study: truncated, corrupted or inconsistent.

    The reason is in DICOM terms where possible, e.g. ``"(0028,0008) Number of Frames is
    0; must be >= 1"``.
    """


class UnsupportedError(InvalidStudyError):
    """A well-formed input that vpimage cannot handle (object, encoding, view)."""


class StudiesFailedError(VpimageError):
    """Some (or all) studies of several could not be read, or their outputs written; the
    others were analysed.

    Parameters
    ----------
    failures : list of InvalidStudyError or OutputError
        One per study that failed, in the order given.
    total : int
        How many studies were given.
    """

    def __init__(self, failures: list[VpimageError], total: int):
        self.failures = list(failures)
        reasons = "; ".join(str(error) for error in self.failures)
        others = "the others were analysed" if len(self.failures) < total else "none was analysed"
        super().__init__(f"{len(self.failures)} of {total} studies failed, {others}: {reasons}")
        # (3 where any study was bad input; 1 where only outputs could not be written)
        self.exit_status = max(error.exit_status for error in self.failures) if self.failures else 3


class OutputError(_PathError):
    """A result cannot be written where it was asked: no such folder, no permission, disk full.
    Not bad input: the command line exits 1 (CONTRACT.md: "1 anything else")."""

    exit_status = 1


class ArgumentError(VpimageError, ValueError):
    """A bad argument to a library function: a value out of its range, arrays of the wrong
    shape, frames out of time order. Also a ``ValueError``, as Python's own are."""


class ConfigError(VpimageError):
    """A bad option or configuration value."""


class BackendUnavailableError(VpimageError):
    """An array backend was asked for but cannot be loaded here."""
