"""Pixel semantics: what a stored DICOM frame means to the analysis.

The analysis sees every frame as float32 ``[rows, cols]``:

1. the stored values (Bits Stored, Pixel Representation) after the Modality LUT or
   Rescale Slope / Intercept;
2. oriented like MONOCHROME2 (higher = brighter = less attenuation): a MONOCHROME1
   frame is inverted within its value range, ``lo + hi - value`` where ``[lo, hi]`` is
   the rescaled range of the stored values (``(2**BitsStored - 1) - value`` with no
   rescale), so radiopaque cement is darker than bone in both;
3. colour frames (RGB, YBR_*) reduced to luminance ``0.299 R + 0.587 G + 0.114 B`` (ITU-R
   BT.601) with a warning.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from os import PathLike

import numpy as np
from pydicom.dataset import Dataset

from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._headers import find, number, shown, shown_term

__all__ = ["PixelFormat", "pixel_format", "to_analysis"]

logger = logging.getLogger(__name__)

_MAX_PIXELS_PER_FRAME = 8192 * 8192  # larger frames are not fluoroscopy: refused as absurd
_MAX_FRAMES = 100_000
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
# The other Photometric Interpretations DICOM defines (PS3.3 C.7.6.3.1.2, retired ones
# included): named when refused; any other text is shown only by its length.
_UNSUPPORTED_PHOTOMETRIC = ("PALETTE COLOR", "HSV", "ARGB", "CMYK", "YBR_PARTIAL_422", "XYB")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class PixelFormat:
    """How one DICOM instance stores its frames and how to turn them into analysis values.

    ``slope``/``intercept`` are the Rescale values (1, 0 when absent); ``lut`` is the
    Modality LUT (``(first_mapped, data)``) when the header has one instead.
    """

    rows: int
    columns: int
    n_frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    slope: float
    intercept: float
    lut: tuple[int, np.ndarray] | None

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame of native (uncompressed) Pixel Data."""
        samples = 2 if self.photometric == "YBR_FULL_422" else self.samples  # (two pixels share Cb and Cr)
        return (self.rows * self.columns * samples * self.bits_allocated + 7) // 8

    def stored_range(self) -> tuple[int, int]:
        """Smallest and largest stored value that (0028,0101) Bits Stored allows."""
        if self.signed:
            return -(2 ** (self.bits_stored - 1)), 2 ** (self.bits_stored - 1) - 1
        return 0, 2**self.bits_stored - 1

    def value_range(self) -> tuple[float, float]:
        """Smallest and largest analysis value before any MONOCHROME1 inversion."""
        lo, hi = self.stored_range()
        if self.lut is not None:  # (only the entries lo ... hi reach: the index is monotonic in the value)
            start, end = _lut_index(np.array([lo, hi]), self.lut)
            reached = self.lut[1][start:end + 1]
            return float(reached.min()), float(reached.max())
        ends = (self.slope * lo + self.intercept, self.slope * hi + self.intercept)
        return min(ends), max(ends)


def _lut_index(stored: np.ndarray, lut: tuple[int, np.ndarray]) -> np.ndarray:
    """Index into the Modality LUT's data of each stored value (any shape; int64, same shape).

    Values below the first mapped value take the first entry, values past the last entry
    take the last (DICOM PS3.3 C.11.1).
    """
    first, data = lut
    return np.clip(stored.astype(np.int64) - first, 0, data.size - 1)


def _int_attr(ds: Dataset, keyword: str, path, *, default=None, lo=None, hi=None) -> int:
    value = ds.get(keyword, default) if default is not None else ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise InvalidStudyError(path, f"{keyword} is missing")
        value = default
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise InvalidStudyError(path, f"{keyword} {shown(value)} is not an integer") from None
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        raise InvalidStudyError(path, f"{keyword} is {out}; must be in [{lo}, {hi}]")
    return out


def _modality_lut(ds: Dataset, path) -> tuple[int, np.ndarray] | None:
    seq = ds.get("ModalityLUTSequence")
    if not seq:
        return None
    item = seq[0]
    try:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        raw = item.LUTData
    except (AttributeError, TypeError, ValueError):
        raise InvalidStudyError(path, "ModalityLUTSequence has no valid LUTDescriptor/LUTData") from None
    if isinstance(raw, (bytes, bytearray)):
        data = np.frombuffer(raw, dtype="<u2" if bits > 8 else "u1")
    else:
        data = np.asarray(raw, dtype=np.float64).ravel()
    n = n or 65536
    if data.size < n or n < 1:
        raise InvalidStudyError(path, f"Modality LUT has {data.size} entries; LUTDescriptor says {n}")
    return first, data[:n].astype(np.float32)


def pixel_format(ds: Dataset, path: str | PathLike) -> PixelFormat:
    """Read and check the Image Pixel attributes of ``ds``.

    Raises
    ------
    InvalidStudyError
        Missing, inconsistent or absurd values (sizes, bit depths, frame counts, a
        Modality rescale or LUT under which no value is above 0, one that lifts the darkest
        stored value above 0, or one beyond float32).
    UnsupportedError
        Photometric interpretations that are not grey or colour video (PALETTE COLOR).
    """
    rows = _int_attr(ds, "Rows", path, lo=1, hi=65535)
    columns = _int_attr(ds, "Columns", path, lo=1, hi=65535)
    if rows * columns > _MAX_PIXELS_PER_FRAME:
        raise InvalidStudyError(path, f"frame size {rows} x {columns} is absurd for fluoroscopy")
    n_frames = _int_attr(ds, "NumberOfFrames", path, default=1, lo=1, hi=_MAX_FRAMES)
    samples = _int_attr(ds, "SamplesPerPixel", path, default=1, lo=1, hi=3)
    bits_allocated = _int_attr(ds, "BitsAllocated", path, lo=1, hi=32)
    bits_stored = _int_attr(ds, "BitsStored", path, default=bits_allocated, lo=1, hi=bits_allocated)
    if bits_allocated not in (1, 8, 16, 32):
        raise InvalidStudyError(path, f"BitsAllocated is {bits_allocated}; must be 1, 8, 16 or 32")
    signed = bool(_int_attr(ds, "PixelRepresentation", path, default=0, lo=0, hi=1))
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        if samples != 1:
            raise InvalidStudyError(path, f"{photometric} with SamplesPerPixel {samples}; must be 1")
    elif photometric in _COLOUR:
        if samples != 3:
            raise InvalidStudyError(path, f"{photometric} with SamplesPerPixel {samples}; must be 3")
    elif photometric:
        raise UnsupportedError(
            path, f"PhotometricInterpretation {shown_term(photometric, _UNSUPPORTED_PHOTOMETRIC)} is not supported")
    else:
        raise InvalidStudyError(path, "PhotometricInterpretation is missing")
    lut = _modality_lut(ds, path)
    slope_value, intercept_value = find(ds, "RescaleSlope"), find(ds, "RescaleIntercept")
    slope = 1.0 if slope_value is None else number(slope_value, path, "RescaleSlope")
    intercept = 0.0 if intercept_value is None else number(intercept_value, path, "RescaleIntercept")
    if slope == 0:
        raise InvalidStudyError(path, "RescaleSlope is 0")
    fmt = PixelFormat(rows, columns, n_frames, samples, bits_allocated, bits_stored, signed,
                      photometric, slope, intercept, lut)
    bottom, top = fmt.value_range()
    mapping = "Modality LUT" if lut is not None else f"RescaleSlope {slope:g} / RescaleIntercept {intercept:g}"
    if not max(abs(bottom), abs(top)) <= _FLOAT32_MAX:  # (frames are float32)
        raise InvalidStudyError(path, f"the {mapping} maps stored values out of float32 range ({bottom:g} to {top:g})")
    if top <= 0:
        raise InvalidStudyError(path, f"the {mapping} maps every stored value to {top:g} or less: "
                                      "no pixel can be read as light reaching the detector")
    if bottom > 0:  # (attenuation reads a value's ratio to the top: an offset would flatten the cement)
        raise InvalidStudyError(path, f"the {mapping} maps the darkest stored value to {bottom:g}, above 0: "
                                      "not an intensity scale that starts at no light")
    return fmt


def to_analysis(raw: np.ndarray, fmt: PixelFormat, path: str | PathLike) -> np.ndarray:
    """Turn one decoded frame into analysis values.

    Parameters
    ----------
    raw : ndarray, shape [rows, cols] or [rows, cols, 3]
        A frame as pydicom decodes it (colour already converted to RGB).
    fmt : PixelFormat
        The instance's pixel format.
    path : str or PathLike
        The file, for messages.

    Returns
    -------
    ndarray, float32, shape [rows, cols]
        Rescaled, MONOCHROME2-oriented values (see the module docstring).
    """
    expected = (fmt.rows, fmt.columns) + ((3,) if fmt.samples == 3 else ())
    if raw.shape != expected:
        raise InvalidStudyError(path, f"a decoded frame has shape {raw.shape}; the header says {expected}")
    if fmt.samples == 3:
        warnings.warn(f"{path}: {fmt.photometric} frames converted to luminance", stacklevel=3)
        return raw.astype(np.float32) @ _LUMA
    if fmt.lut is not None:
        out = fmt.lut[1][_lut_index(raw, fmt.lut)]
    elif fmt.slope != 1 or fmt.intercept != 0:
        out = raw.astype(np.float32) * np.float32(fmt.slope) + np.float32(fmt.intercept)
    else:
        out = raw.astype(np.float32)
    if fmt.photometric == "MONOCHROME1":
        lo, hi = fmt.value_range()
        out = np.float32(lo + hi) - out
    return out
