"""The cement masks and the time-of-arrival map, saved with the results (``masks.npz``)."""

from __future__ import annotations

import zipfile
from os import PathLike

import numpy as np

from vpimage._atomic import atomic_path
from vpimage.errors import InvalidStudyError

__all__ = ["MASKS_FILE", "read_masks_npz", "write_masks_npz"]

# File name of the masks in an analysis' output folder.
MASKS_FILE = "masks.npz"


def _check(masks: np.ndarray, time_of_arrival_s: np.ndarray) -> None:
    if masks.ndim != 3 or masks.dtype != bool:
        raise ValueError(f"`masks` must be a bool array [frames, rows, cols]; got {masks.dtype} {masks.shape}")
    if time_of_arrival_s.shape != masks.shape[1:] or time_of_arrival_s.dtype.kind != "f":
        raise ValueError(
            f"`time_of_arrival_s` must be a float array [rows, cols] = {masks.shape[1:]}; "
            f"got {time_of_arrival_s.dtype} {time_of_arrival_s.shape}"
        )


def write_masks_npz(path: str | PathLike, masks, time_of_arrival_s) -> None:
    """Write the cement masks and the time-of-arrival map, compressed and atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination, by convention ``<out>/masks.npz``.
    masks : ndarray, bool, shape [frames, rows, cols]
        Cement of every frame; stored as key ``"cement"``.
    time_of_arrival_s : ndarray, float, shape [rows, cols]
        When cement first reached each pixel, s from the first frame; NaN where it never
        did. Stored as float32, key ``"time_of_arrival_s"``.

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
    try:
        with np.load(path, allow_pickle=False) as data:
            masks, toa = data["cement"], data["time_of_arrival_s"]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InvalidStudyError(path, f"cannot read the masks: {error}") from None
    except KeyError as error:
        raise InvalidStudyError(path, f"no array {error} in the masks file") from None
    try:
        _check(masks, toa)
    except ValueError as error:
        raise InvalidStudyError(path, str(error)) from None
    return masks, toa
