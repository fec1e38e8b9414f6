"""The exposed field of view: from the shutter attributes, else from the pixels.

Shutters (Display Shutter module, PS3.3 C.7.6.11, at the top level or in the shared
Frame Display Shutter functional group) give 1-based pixel positions: ``RECTANGULAR``
(inclusive edges), ``CIRCULAR`` (centre row\\column and radius) and ``POLYGONAL``
(vertices row\\column); several shapes intersect.

Without shutters the field is found from the first frame: an image-intensifier image is
black outside its circle (collimated images outside their blades). Pixels brighter
than a small fraction of the frame's range above its darkest level are exposed; the
largest such region, holes filled and smoothed by an opening, bounds the field. A
trocar can be dark enough to clip where it crosses the field's edge, joining the dark
outside: the field is closed with a disc wider than a trocar's shadow
(:data:`_TROCAR_FRACTION` of the frame), the frame's outside counting as dark, so that
only dark wider than a trocar is border. A field is convex (an intensifier's circle,
collimator blades), and the closing leaves one unchanged. The dark pieces outside it that
touch the frame's edge (each at least :data:`_MIN_BORDER_PIECE` of the frame) are the
border. The rest is the field when it covers between :data:`_MIN_FIELD` and
:data:`_MAX_FIELD` of the frame. Otherwise there is no visible border and the whole
frame counts (``"none"``).
"""

from __future__ import annotations

from os import PathLike

import numpy as np
from pydicom.dataset import Dataset
from scipy import ndimage
from skimage.draw import polygon2mask

from vpimage.errors import InvalidStudyError
from vpimage.io._headers import find, number, numbers, shown_term

__all__ = ["field_of_view", "shutter_mask"]

_DARK_FRACTION = 0.05  # exposed: above the darkest level by this fraction of the range
_MIN_FIELD = 0.15  # a found field covers at least this fraction of the frame ...
_MAX_FIELD = 0.97  # ... and leaves at least 3 % dark border
_MIN_BORDER_PIECE = 0.005  # dark border pieces smaller than this fraction of the frame are noise
_OPENING_PX = 3  # removes burnt-in text and thin bright lines joined to the field
# A trocar's shadow (at most 4 mm) spans at most this fraction of the frame's smaller side
# (at least 100 mm at the isocentre: an intensifier's smallest magnified field).
_TROCAR_FRACTION = 0.04
_SHUTTER_SHAPES = ("RECTANGULAR", "CIRCULAR", "POLYGONAL", "BITMAP")  # DICOM's terms (PS3.3 C.7.6.11.1.1)


def shutter_mask(ds: Dataset, shape: tuple[int, int], path) -> np.ndarray | None:
    """Bool ``[rows, cols]``, True inside the display shutters of ``ds``; ``None`` without
    shutter attributes.

    Raises
    ------
    InvalidStudyError
        A shape without its attributes, a radius not above 0, an unknown shape, or
        shutters that leave no pixel exposed.
    """
    value = find(ds, "ShutterShape")
    if value is None:
        return None
    shapes = [str(v).strip().upper() for v in (value if type(value).__name__ == "MultiValue" else [value])]
    rows, columns = shape
    mask = np.ones(shape, dtype=bool)
    r, c = np.ogrid[0:rows, 0:columns]
    for kind in shapes:
        if kind == "RECTANGULAR":
            left, right, top, bottom = (
                number(find(ds, k), path, k) if find(ds, k) is not None else None
                for k in ("ShutterLeftVerticalEdge", "ShutterRightVerticalEdge",
                          "ShutterUpperHorizontalEdge", "ShutterLowerHorizontalEdge")
            )
            if None in (left, right, top, bottom):
                raise InvalidStudyError(path, "RECTANGULAR shutter without its four edges")
            mask &= (r >= top - 1) & (r <= bottom - 1) & (c >= left - 1) & (c <= right - 1)
        elif kind == "CIRCULAR":
            centre, radius = find(ds, "CenterOfCircularShutter"), find(ds, "RadiusOfCircularShutter")
            if centre is None or radius is None:
                raise InvalidStudyError(path, "CIRCULAR shutter without its centre and radius")
            centre = numbers(centre, path, "CenterOfCircularShutter")
            if len(centre) != 2:
                raise InvalidStudyError(path, f"CenterOfCircularShutter has {len(centre)} values; must be row\\column")
            row, col = centre
            radius = number(radius, path, "RadiusOfCircularShutter")
            if not radius > 0:
                raise InvalidStudyError(path, f"RadiusOfCircularShutter is {radius:g}; must be > 0 px")
            mask &= (r - (row - 1)) ** 2 + (c - (col - 1)) ** 2 <= radius**2
        elif kind == "POLYGONAL":
            vertices = find(ds, "VerticesOfThePolygonalShutter")
            points = np.asarray(numbers(vertices, path, "VerticesOfThePolygonalShutter") if vertices else [])
            if points.size < 6 or points.size % 2:
                raise InvalidStudyError(path, "POLYGONAL shutter needs at least three row\\column vertices")
            mask &= polygon2mask(shape, points.reshape(-1, 2) - 1)
        else:
            raise InvalidStudyError(
                path, f"ShutterShape {shown_term(kind, _SHUTTER_SHAPES)} is not RECTANGULAR, CIRCULAR or POLYGONAL")
    if not mask.any():
        raise InvalidStudyError(path, "the display shutter leaves no pixel exposed")
    return mask


def _closed(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """``mask`` closed with a disc of ``radius_px`` (px), what lies beyond the frame counting
    as False: dark bays narrower than the disc join ``mask``; a convex mask is unchanged."""
    reach = int(np.ceil(radius_px)) + 1
    padded = np.pad(mask, reach)
    grown = ndimage.distance_transform_edt(~padded) <= radius_px
    return (ndimage.distance_transform_edt(grown) > radius_px)[reach:-reach, reach:-reach]


def _pixel_mask(frame: np.ndarray) -> np.ndarray | None:
    finite = frame[np.isfinite(frame)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(np.percentile(finite, 99.5))
    if hi <= lo:
        return None
    bright = frame > lo + _DARK_FRACTION * (hi - lo)
    bright = ndimage.binary_opening(bright, structure=np.ones((_OPENING_PX, _OPENING_PX)))
    labels, n = ndimage.label(bright)
    if n == 0:
        return None
    largest = 1 + int(np.argmax(ndimage.sum_labels(bright, labels, index=np.arange(1, n + 1))))
    field = _closed(ndimage.binary_fill_holes(labels == largest), 0.5 * _TROCAR_FRACTION * min(frame.shape))
    # The border: dark regions that touch the frame's edge, each of a visible size.
    dark, n = ndimage.label(~field)
    edge_labels = np.unique(np.concatenate([dark[0], dark[-1], dark[:, 0], dark[:, -1]]))
    sizes = ndimage.sum_labels(np.ones_like(field), dark, index=edge_labels)
    border = np.isin(dark, edge_labels[(edge_labels > 0) & (sizes >= _MIN_BORDER_PIECE * field.size)])
    mask = ~border
    return mask if _MIN_FIELD <= mask.mean() <= _MAX_FIELD else None


def field_of_view(ds: Dataset, first_frame: np.ndarray, path: str | PathLike) -> tuple[np.ndarray, str]:
    """``(mask, source)``: bool ``[rows, cols]`` True where exposed, and
    ``"shutter"``, ``"pixels"`` or ``"none"`` (module docstring).

    Parameters
    ----------
    ds : Dataset
        The header (shutter attributes).
    first_frame : ndarray, float32, shape [rows, cols]
        The first frame in analysis values (MONOCHROME2 orientation).
    path : str or PathLike
        The file, for messages.
    """
    shape = first_frame.shape
    mask = shutter_mask(ds, shape, path)
    if mask is not None:
        return mask, "shutter"
    mask = _pixel_mask(first_frame)
    if mask is not None:
        return mask, "pixels"
    return np.ones(shape, dtype=bool), "none"
