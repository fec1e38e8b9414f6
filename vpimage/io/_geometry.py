"""Geometry of a study: millimetres at the isocentre, field of view and view direction.

Calibration follows CONTRACT.md, first match wins:

1. ``PixelSpacing`` (already at the patient plane);
2. ``ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor``;
3. ``ImagerPixelSpacing * DistanceSourceToPatient / DistanceSourceToDetector``
   (``DistanceSourceToIsocenter`` stands in for the patient distance in enhanced objects);
   a magnification (the factor, or ``DistanceSourceToDetector / DistanceSourceToPatient``)
   outside ``[1, 3]`` is impossible on a C-arm and raises :class:`InvalidStudyError`, like
   a source-to-patient distance beyond the detector or a non-positive value;
4. ``ImagerPixelSpacing`` alone, at the detector plane, with a warning (millimetres are
   then too large by the unknown magnification);
5. none: ``mm_per_px`` is ``None``, with a warning.

The view comes from the positioner angles (``PositionerPrimaryAngle``: LAO +/RAO -, 0 is a
frontal beam; ``PositionerSecondaryAngle``: cranial/caudal tilt), else from
``ViewPosition`` (LL/RL lateral, AP/PA frontal), else it is ``"unknown"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._fov import field_of_view, shutter_mask
from vpimage.io._headers import find, number, numbers

__all__ = ["DETECTOR_PLANE", "Geometry", "calibration", "check_same_geometry", "geometry", "view"]

#: :attr:`Geometry.calibration` of millimetres at the detector plane (rule 4).
DETECTOR_PLANE = "ImagerPixelSpacing (no magnification: detector plane)"

_LATERAL_TOLERANCE_DEG = 15.0  # primary angle within 90 +/- this: lateral
_AP_TOLERANCE_DEG = 15.0  # primary angle within 0 (or 180) +/- this: AP/PA
_TILT_TOLERANCE_DEG = 20.0  # a larger cranial/caudal tilt makes the view oblique
_ANISOTROPY = 0.01  # row and column spacing may differ by 1 % before pixels count as non-square
_MM_PER_PX_RANGE = (0.001, 10.0)  # pixel sizes (mm at the isocentre) that a fluoroscopy header may give
# Geometric magnification (detector over isocentre size) that a C-arm can have: never below 1,
# since the patient lies between source and detector (1 exactly: the patient on the detector),
# and about 1.1-1.5 in practice (at most ~2-2.5 with the detector fully raised, or in
# deliberate magnification radiography); 3 is a generous ceiling.
_MAGNIFICATION_RANGE = (1.0, 3.0)
# How far a series' later instances may differ from its first: pixel size (fraction),
# positioner angles (degrees), display shutter (least intersection over union).
_SAME_PIXEL_SIZE = 0.01
_SAME_ANGLE_DEG = 5.0
_SAME_SHUTTER_OVERLAP = 0.9


@dataclass(frozen=True, eq=False)
class Geometry:
    """Where the pixels are.

    Attributes
    ----------
    mm_per_px : float or None
        Pixel size at the isocentre (mm per pixel), ``None`` when uncalibrated.
    calibration : str
        Where ``mm_per_px`` came from (see the module docstring), ``"none"`` when uncalibrated.
    fov_mask : ndarray, bool, shape [rows, cols]
        True where the field of view is exposed.
    fov_source : str
        ``"shutter"`` (shutter attributes), ``"pixels"`` (found from dark borders) or
        ``"none"`` (no field found: the mask is all True).
    view : str
        ``"lateral"``, ``"ap"``, ``"oblique"`` or ``"unknown"``.
    """

    mm_per_px: float | None
    calibration: str
    fov_mask: np.ndarray = field(repr=False)
    fov_source: str
    view: str

    @property
    def magnification_unknown(self) -> bool:
        """Whether ``mm_per_px`` is the detector's spacing, not the isocentre's: distances in
        mm read too large by the unknown magnification (about 1.1-1.5 on a C-arm)."""
        return self.calibration == DETECTOR_PLANE


def _spacing(ds: Dataset, keyword: str, path) -> float | None:
    value = find(ds, keyword)
    if value is None:
        return None
    values = numbers(value, path, keyword)
    if len(values) == 1:
        values = values * 2
    if min(values) <= 0:
        raise InvalidStudyError(path, f"{keyword} {values} is not positive")
    if abs(values[0] - values[1]) > _ANISOTROPY * max(values):
        raise UnsupportedError(path, f"{keyword} {values[:2]}: non-square pixels are not supported")
    return (values[0] + values[1]) / 2


def _positive(ds: Dataset, keyword: str, path) -> float | None:
    value = find(ds, keyword)
    if value is None:
        return None
    out = number(value, path, keyword)
    if out <= 0:
        raise InvalidStudyError(path, f"{keyword} is {out}; must be > 0")
    return out


def calibration(ds: Dataset, path: str | PathLike) -> tuple[float | None, str]:
    """``(mm_per_px, source)`` for the header ``ds`` (see the module docstring).

    Raises
    ------
    InvalidStudyError
        Zero, negative or non-numeric spacings, magnifications or distances, a
        magnification outside ``[1, 3]`` (impossible on a C-arm), or a pixel size outside
        ``[0.001, 10]`` mm, absurd for fluoroscopy.
    """
    mm_per_px, source = _calibration(ds, path)
    if mm_per_px is not None and not _MM_PER_PX_RANGE[0] <= mm_per_px <= _MM_PER_PX_RANGE[1]:
        raise InvalidStudyError(path, f"{source} gives {mm_per_px:g} mm per px, absurd for fluoroscopy "
                                      f"(not in [{_MM_PER_PX_RANGE[0]:g}, {_MM_PER_PX_RANGE[1]:g}])")
    return mm_per_px, source


def _calibration(ds: Dataset, path: str | PathLike) -> tuple[float | None, str]:
    pixel = _spacing(ds, "PixelSpacing", path)
    if pixel is not None:
        return pixel, "PixelSpacing"
    imager = _spacing(ds, "ImagerPixelSpacing", path)
    if imager is None:
        warnings.warn(f"{path}: no pixel spacing: millimetres are unknown (mm columns will be NaN)", stacklevel=3)
        return None, "none"
    magnification = _positive(ds, "EstimatedRadiographicMagnificationFactor", path)
    if magnification is not None:
        _check_magnification(magnification, "EstimatedRadiographicMagnificationFactor", path)
        return imager / magnification, "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
    sid = _positive(ds, "DistanceSourceToDetector", path)
    for keyword in ("DistanceSourceToPatient", "DistanceSourceToIsocenter"):
        sod = _positive(ds, keyword, path)
        if sid is not None and sod is not None:
            if sod > sid:
                raise InvalidStudyError(path, f"{keyword} {sod} exceeds DistanceSourceToDetector {sid}")
            _check_magnification(sid / sod, f"DistanceSourceToDetector {sid:g} / {keyword} {sod:g}", path)
            return imager * sod / sid, f"ImagerPixelSpacing/DistanceSourceToDetector/{keyword}"
    warnings.warn(f"{path}: ImagerPixelSpacing without magnification: millimetres are at the detector "
                  "plane, too large by the unknown magnification", stacklevel=3)
    return imager, DETECTOR_PLANE


def _check_magnification(magnification: float, what: str, path) -> None:
    low, high = _MAGNIFICATION_RANGE
    if not low <= magnification <= high:
        raise InvalidStudyError(path, f"{what} gives a magnification of {magnification:g}, impossible on a C-arm "
                                      f"(not in [{low:g}, {high:g}])")


def _angles(ds: Dataset, path) -> tuple[float, float] | None:
    """``(primary, secondary)`` positioner angles, degrees (secondary 0 when absent); None
    without a primary angle."""
    primary = find(ds, "PositionerPrimaryAngle")
    if primary is None:
        return None
    secondary = find(ds, "PositionerSecondaryAngle")
    return (number(primary, path, "PositionerPrimaryAngle"),
            0.0 if secondary is None else number(secondary, path, "PositionerSecondaryAngle"))


def view(ds: Dataset, path: str | PathLike) -> str:
    """``"lateral"``, ``"ap"``, ``"oblique"`` or ``"unknown"`` from the positioner angles."""
    angles = _angles(ds, path)
    if angles is None:
        position = str(ds.get("ViewPosition", "")).strip().upper()
        return {"LL": "lateral", "RL": "lateral", "LLD": "lateral", "RLD": "lateral",
                "AP": "ap", "PA": "ap"}.get(position, "unknown")
    tilt = abs(angles[1])
    angle = abs(angles[0]) % 360.0
    angle = min(angle, 360.0 - angle)  # 0..180: 0 frontal, 90 lateral, 180 frontal again
    if tilt > _TILT_TOLERANCE_DEG:
        return "oblique"
    if abs(angle - 90.0) <= _LATERAL_TOLERANCE_DEG:
        return "lateral"
    if angle <= _AP_TOLERANCE_DEG or angle >= 180.0 - _AP_TOLERANCE_DEG:
        return "ap"
    return "oblique"


def geometry(ds: Dataset, first_frame: np.ndarray, path: str | PathLike) -> Geometry:
    """The :class:`Geometry` of the header ``ds`` whose first frame (analysis values,
    float32 [rows, cols]) is ``first_frame`` (the field of view may be found from it)."""
    mm_per_px, source = calibration(ds, path)
    mask, fov_source = field_of_view(ds, first_frame, path)
    return Geometry(mm_per_px, source, mask, fov_source, view(ds, path))


def _mm(mm_per_px: float | None) -> str:
    return "none" if mm_per_px is None else f"{mm_per_px:.4g} mm"


def _angle_apart(a: float, b: float) -> float:
    """Degrees between two angles, 0..180."""
    apart = abs(a - b) % 360.0
    return min(apart, 360.0 - apart)


def check_same_geometry(ds: Dataset, path: Path, first: Dataset, reference: Geometry, first_path: Path) -> None:
    """Refuse the header ``ds`` (file ``path``) of a later instance of a series seen another
    way than its first instance (header ``first``, geometry ``reference``, file
    ``first_path``): a pixel size more than 1 % apart, positioner angles more than 5 degrees
    apart (the view's name when either has none), or a display shutter that overlaps the
    first's by less than 90 % (intersection over union; a slight narrowing is left to the
    engine's collimator check). Its frames would be measured in the wrong millimetres,
    against corners drawn on another view, or in the wrong field.

    Raises
    ------
    InvalidStudyError
        Naming ``path`` and, in the message, ``first_path``; or the header's own errors
        (as :func:`calibration`, :func:`view` and the shutter give them).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the first instance's warnings were given)
        mm_per_px, _ = calibration(ds, path)
    name, ref = first_path.name, reference.mm_per_px
    apart = "the instances cannot be measured as one series"
    if (mm_per_px is None) != (ref is None) or (
            mm_per_px is not None and abs(mm_per_px - ref) > _SAME_PIXEL_SIZE * ref):
        raise InvalidStudyError(path, f"pixel size {_mm(mm_per_px)} differs from {name}'s {_mm(ref)} "
                                      f"(by more than {_SAME_PIXEL_SIZE * 100:g} %): {apart}")
    angles, first_angles = _angles(ds, path), _angles(first, first_path)
    if angles is not None and first_angles is not None:
        turned = max(_angle_apart(a, b) for a, b in zip(angles, first_angles))
        if turned > _SAME_ANGLE_DEG:
            raise InvalidStudyError(path, f"positioner angles {angles[0]:g}, {angles[1]:g} deg differ from {name}'s "
                                          f"{first_angles[0]:g}, {first_angles[1]:g} by {turned:g} deg "
                                          f"(more than {_SAME_ANGLE_DEG:g}): {apart}")
    elif (seen := view(ds, path)) != reference.view:
        raise InvalidStudyError(path, f"view {seen!r} differs from {name}'s {reference.view!r}: {apart}")
    shutter = shutter_mask(ds, reference.fov_mask.shape, path)
    if (shutter is not None) != (reference.fov_source == "shutter"):
        raise InvalidStudyError(path, f"has {'a' if shutter is not None else 'no'} display shutter, unlike {name}: "
                                      f"{apart}")
    if shutter is not None:
        overlap = (shutter & reference.fov_mask).sum() / (shutter | reference.fov_mask).sum()
        if overlap < _SAME_SHUTTER_OVERLAP:
            raise InvalidStudyError(path, f"display shutter overlaps {name}'s by {overlap * 100:.0f} % only "
                                          f"(less than {_SAME_SHUTTER_OVERLAP * 100:g} %): {apart}")
