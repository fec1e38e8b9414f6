"""The cement masks and the time-of-arrival map, saved with the results (``masks.npz``)."""

from __future__ import annotations

import zipfile
import zlib
from os import PathLike

import numpy as np

from vpimage._atomic import atomic_path
from vpimage.errors import ArgumentError, InvalidStudyError

__all__ = ["MASKS_FILE", "read_masks_npz", "read_npz_arrays", "write_masks_npz"]

# File name of the masks in an analysis' output folder.
MASKS_FILE = "masks.npz"

# The first bytes of a zip archive (an npz is one), empty or not; np.load tests the same.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _check(masks: np.ndarray, time_of_arrival_s: np.ndarray) -> None:
    if masks.ndim != 3 or masks.dtype != bool:
        raise ArgumentError(f"`masks` must be a bool array [frames, rows, cols]; got {masks.dtype} {masks.shape}")
    if time_of_arrival_s.shape != masks.shape[1:] or time_of_arrival_s.dtype.kind != "f":
        raise ArgumentError(
            f"`time_of_arrival_s` must be a float array [rows, cols] the size of the masks' frames "
            f"{masks.shape[1:]}; got {time_of_arrival_s.dtype} {time_of_arrival_s.shape} (one of the two is wrong)"
        )


def write_masks_npz(path: str | PathLike, masks, time_of_arrival_s) -> None:
    """Write the cement masks and the time-of-arrival map, compressed and atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination, by convention ``<out>/masks.npz``.
    masks : ndarray, bool, shape [frames, rows, cols]
        Cement of every frame, where it lies in that frame's image (it moves with the
        patient); stored as key ``"cement"``.
    time_of_arrival_s : ndarray, float, shape [rows, cols]
        When cement first reached each pixel, s from the first frame; NaN where it never
        did. In the first frame's image (the body as it lay then: the frames are aligned on
        it), so a frame's mask and the map differ by that frame's motion. Stored as float32,
        key ``"time_of_arrival_s"``.

    Raises
    ------
    ValueError
        Shapes or dtypes other than these.
    """
    masks = np.asarray(masks)
    time_of_arrival_s = np.asarray(time_of_arrival_s)
    _check(masks, time_of_arrival_s)
    with atomic_path(path) as temp:
        with open(temp, "wb") as stream:
            np.savez_compressed(stream, cement=masks, time_of_arrival_s=time_of_arrival_s.astype(np.float32))


def read_masks_npz(path: str | PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read what :func:`write_masks_npz` wrote.

    Returns
    -------
    cement : ndarray, bool, shape [frames, rows, cols]
    time_of_arrival_s : ndarray, float32, shape [rows, cols]
        s, NaN where cement never arrived.

    Raises
    ------
    InvalidStudyError
        The file is missing, not an npz, lacks a key or has the wrong shapes.
    """
    masks, toa = read_npz_arrays(path, ("cement", "time_of_arrival_s"), "masks")
    try:
        _check(masks, toa)
    except ValueError as error:
        raise InvalidStudyError(path, str(error)) from None
    return masks, toa


def read_npz_arrays(path: str | PathLike, keys: tuple[str, ...], what: str) -> list[np.ndarray]:
    """The arrays ``keys`` of the npz archive ``path``, read without pickles.

    Parameters
    ----------
    path : str or PathLike
        The npz file.
    keys : tuple of str
        The names of the arrays to read, all required.
    what : str
        What the file holds, for the error messages, e.g. ``"masks"``.

    Returns
    -------
    list of ndarray
        One per key, in the order of ``keys``.

    Raises
    ------
    InvalidStudyError
        The file is missing or unreadable, not an npz archive (empty, a bare .npy, a
        pickle, other bytes), corrupted, or has no array of one of the keys.
    """
    # (zipfile raises RuntimeError for an encrypted member or an unknown compression.)
    try:
        with open(path, "rb") as stream:
            if stream.read(len(_ZIP_MAGIC[0])) not in _ZIP_MAGIC:
                raise InvalidStudyError(path, f"cannot read the {what}: not an npz archive")
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as data:
                missing = [key for key in keys if key not in data.files]
                if missing:
                    raise InvalidStudyError(path, f"has no array {missing[0]!r}")
                return [np.asarray(data[key]) for key in keys]  # (a member that is no .npy reads as bytes)
    except (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile, zlib.error) as error:
        raise InvalidStudyError(path, f"cannot read the {what}: {error}") from None
