"""Measures of the cement against the vertebral body (CONTRACT.md "Words").

Pure functions on arrays. Coordinates are ``(x, y)`` = ``(column, row)`` in pixels, origin
at the centre of the top-left pixel; masks are boolean ``[rows, cols]``. Distances are in
pixels (px) unless a name says ``_mm`` (mm at the isocentre).

The vertebral body is the quadrilateral of its four :class:`Corners`. Four lines bound it:
the posterior wall (``posterior_superior``-``posterior_inferior``), the anterior wall
(``anterior_superior``-``anterior_inferior``), the superior endplate
(``anterior_superior``-``posterior_superior``) and the inferior endplate
(``anterior_inferior``-``posterior_inferior``). Each line's signed distance is positive on
the body's side.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from functools import cached_property
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
from scipy import ndimage

from vpimage.errors import ArgumentError

__all__ = [
    "LEAK_CLASSES",
    "Corners",
    "FrontSpeedEstimator",
    "LeakRules",
    "band_mask",
    "body_mask",
    "cement_outside_body_px",
    "classify_leaks",
    "depth_fraction",
    "front_and_depth",
    "front_to_wall_px",
    "hidden_front_to_wall_px",
    "plausible_body",
    "signed_distance_to_wall_px",
    "time_to_wall_s",
]

# Leak classes of the lateral view, in the order outputs list them.
LEAK_CLASSES = ("posterior", "venous", "disc_superior", "disc_inferior", "anterior")

# The depth (anterior to posterior wall) and height (endplate to endplate) a treated vertebral
# body spans, mm at the isocentre: cervical to lumbar, with room for a collapsed body's height
# and for millimetres at the detector plane (up to 1.5x). Corners outside them were drawn for
# another image or scale, or the pixel size is wrong.
_BODY_DEPTH_MM = (10.0, 80.0)
_BODY_HEIGHT_MM = (3.0, 60.0)

_CORNER_NAMES = ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior")

# Pixel centres this close to a line (px) count as on it: exact for hand-placed corners.
_ON_LINE_PX = 1e-6


def _point(value, name: str) -> tuple[float, float]:
    # A pair of real numbers only: a string is not read digit by digit, a boolean as 0 or 1,
    # nor a mapping by its keys.
    pair = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    if len(pair) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in pair):
        raise ArgumentError(f"corner `{name}` must be a pair [x, y] of numbers; got {value!r}")
    try:
        x, y = (float(v) for v in pair)
    except OverflowError:  # (an integer too large for a float)
        x = y = math.inf
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ArgumentError(f"corner `{name}` must be finite; got {value!r}")
    return x, y


@dataclass(frozen=True)
class Corners:
    """The four corners of a vertebral body, each an ``(x, y)`` pair in px.

    The corners must make a convex quadrilateral in the order anterior_superior,
    posterior_superior, posterior_inferior, anterior_inferior (either winding).

    Raises
    ------
    ValueError
        A corner is not a finite pair, or the quadrilateral is degenerate or not convex.
    """

    anterior_superior: tuple[float, float]
    posterior_superior: tuple[float, float]
    posterior_inferior: tuple[float, float]
    anterior_inferior: tuple[float, float]

    def __post_init__(self):
        for name in _CORNER_NAMES:
            object.__setattr__(self, name, _point(getattr(self, name), name))
        pts = self.as_array()
        edges = np.roll(pts, -1, axis=0) - pts
        turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
        if not (np.all(turns > 0) or np.all(turns < 0)):
            raise ArgumentError(
                "vertebral body corners must form a convex quadrilateral in the order "
                f"{', '.join(_CORNER_NAMES)}; got {self.to_dict()}"
            )

    @classmethod
    def from_dict(cls, d: Mapping) -> "Corners":
        """Corners from the WALL.json ``"vertebral_body"`` form ``{name: [x, y], ...}``.

        Raises
        ------
        ValueError
            A corner is missing, unknown or malformed.
        """
        if not isinstance(d, Mapping):
            raise ArgumentError(f"vertebral_body must be an object of four corners; got {type(d).__name__}")
        missing = [n for n in _CORNER_NAMES if n not in d]
        unknown = sorted(set(d) - set(_CORNER_NAMES))
        if missing or unknown:
            raise ArgumentError(f"vertebral_body corners: missing {missing}, unknown {unknown}")
        return cls(*(d[n] for n in _CORNER_NAMES))

    def to_dict(self) -> dict[str, list[float]]:
        """The WALL.json ``"vertebral_body"`` form: ``{name: [x, y], ...}``."""
        return {n: list(getattr(self, n)) for n in _CORNER_NAMES}

    def as_array(self) -> np.ndarray:
        """Corners as float64 ``[4, 2]`` (rows ``(x, y)``, in the order of the fields)."""
        return np.array([getattr(self, n) for n in _CORNER_NAMES], dtype=np.float64)

    def translated(self, dx: float, dy: float) -> "Corners":
        """The corners moved by ``(dx, dy)`` px."""
        return Corners(*((x + dx, y + dy) for x, y in self.as_array()))

    def depth_and_height_px(self) -> tuple[float, float]:
        """The body's depth (between the midpoints of its anterior and posterior walls) and
        height (between the midpoints of its endplates), px."""
        a_s, p_s, p_i, a_i = self.as_array()
        depth = np.hypot(*((p_s + p_i) - (a_s + a_i)) / 2)
        height = np.hypot(*((a_i + p_i) - (a_s + p_s)) / 2)
        return float(depth), float(height)

    @cached_property
    def bounding_lines(self) -> dict[str, tuple[np.ndarray, float]]:
        """The four bounding lines of the body (``posterior``, ``anterior``, ``superior``,
        ``inferior``), each a unit normal and an offset whose ``n @ (x, y) + c`` is the
        signed distance to it, px, positive toward the body. Worked out once per
        Corners (they are immutable): a frame's measures all ask for them."""
        a_s, p_s, p_i, a_i = self.as_array()
        return {
            "posterior": _line(p_s, p_i, (a_s + a_i) / 2),
            "anterior": _line(a_s, a_i, (p_s + p_i) / 2),
            "superior": _line(a_s, p_s, (a_i + p_i) / 2),
            "inferior": _line(a_i, p_i, (a_s + p_s) / 2),
        }


def _line(p0, p1, inside) -> tuple[np.ndarray, float]:
    """Unit normal ``n`` and offset ``c`` so that ``n @ (x, y) + c`` is the signed
    distance (px) to the line through ``p0``, ``p1``, positive on the side of ``inside``."""
    p0, p1, inside = (np.asarray(p, dtype=np.float64) for p in (p0, p1, inside))
    direction = p1 - p0
    normal = np.array([-direction[1], direction[0]]) / np.hypot(*direction)
    if normal @ (inside - p0) < 0:
        normal = -normal
    return normal, float(-normal @ p0)


def _distance(line, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    normal, offset = line
    return normal[0] * xs + normal[1] * ys + offset


def _grid(shape) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = shape
    ys, xs = np.mgrid[0:rows, 0:cols]
    return xs.astype(np.float64), ys.astype(np.float64)


def _check_mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ArgumentError(f"`mask` must be a 2-dimensional bool array; got {mask.dtype} {mask.shape}")
    return mask


def _lines(corners) -> dict:
    """The bounding lines of ``corners``, which must be :class:`Corners`."""
    if not isinstance(corners, Corners):
        raise ArgumentError(f"`corners` must be Corners (Corners.from_dict reads a mapping); got {type(corners).__name__}")
    return corners.bounding_lines


def plausible_body(corners: Corners, mm_per_px: float) -> bool:
    """Whether ``corners`` span a vertebral body's depth (10-80 mm) and height (3-60 mm) at
    ``mm_per_px`` (mm at the isocentre per px)."""
    _lines(corners)  # (Corners only)
    depth, height = (size_px * mm_per_px for size_px in corners.depth_and_height_px())
    return _BODY_DEPTH_MM[0] <= depth <= _BODY_DEPTH_MM[1] and _BODY_HEIGHT_MM[0] <= height <= _BODY_HEIGHT_MM[1]


def body_mask(corners: Corners, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the vertebral body (edges included).

    Parameters
    ----------
    corners : Corners
        The vertebral body, px.
    shape : (rows, cols)
        Shape of the image.

    Returns
    -------
    ndarray, bool, shape [rows, cols]
    """
    xs, ys = _grid(shape)
    inside = np.ones(shape, dtype=bool)
    for line in _lines(corners).values():
        inside &= _distance(line, xs, ys) >= -_ON_LINE_PX
    return inside


def band_mask(corners: Corners, shape: tuple[int, int]) -> np.ndarray:
    """Pixels between the superior and the inferior endplate lines (lines included).

    The band extends without end in the anterior and posterior directions, so cement
    behind the posterior wall at the body's level is in it.

    Returns
    -------
    ndarray, bool, shape [rows, cols]
    """
    return _in_band(_lines(corners), *_grid(shape))


def _in_band(lines: dict, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Whether the points ``(xs, ys)`` (px) lie between the endplate lines (lines included)."""
    superior, inferior = (_distance(lines[name], xs, ys) for name in ("superior", "inferior"))
    return (superior >= -_ON_LINE_PX) & (inferior >= -_ON_LINE_PX)


def signed_distance_to_wall_px(corners: Corners, shape: tuple[int, int]) -> np.ndarray:
    """Perpendicular distance of every pixel centre to the posterior-wall line, px.

    Positive on the body's side of the line, negative behind it.

    Returns
    -------
    ndarray, float32, shape [rows, cols]
    """
    xs, ys = _grid(shape)
    return _distance(_lines(corners)["posterior"], xs, ys).astype(np.float32)


def _band_cement(mask: np.ndarray, corners: Corners) -> tuple[np.ndarray, np.ndarray, dict]:
    """Centres ``(xs, ys)`` of the cement pixels in the band, and the body's lines."""
    lines = _lines(corners)
    ys, xs = np.nonzero(_check_mask(mask))
    xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    keep = _in_band(lines, xs, ys)
    return xs[keep], ys[keep], lines


def front_to_wall_px(mask, corners: Corners) -> float:
    """Signed distance of the cement front to the posterior wall, px.

    CONTRACT.md: over the cement pixels in the band (between the endplate lines), the
    smallest signed perpendicular distance to the posterior-wall line; positive on the
    body's side, negative once cement lies behind the wall (a breach).

    Parameters
    ----------
    mask : ndarray, bool, shape [rows, cols]
        Cement pixels.
    corners : Corners
        The treated vertebral body, px.

    Returns
    -------
    float
        px; NaN when no cement lies in the band.
    """
    return front_and_depth(mask, corners)[0]


def hidden_front_to_wall_px(mask, blind, corners: Corners, *, reach_px: float) -> float:
    """Signed distance to the posterior wall of cement that could lie unseen beyond the front, px.

    Blind pixels are those where thin cement cannot be told from the image's noise or
    edges (the steel needle's shadow, above all). Cement that reaches them may run on
    inside them unseen. Over the blind pixels in the band that are joined to the cement
    through blind pixels (8-connected) and lie within ``reach_px`` of it, the smallest
    signed distance to the posterior-wall line, as :func:`front_to_wall_px` measures the
    cement's own.

    Parameters
    ----------
    mask : ndarray, bool, shape [rows, cols]
        Cement pixels.
    blind : ndarray, bool, shape [rows, cols]
        Pixels where thin cement may go unseen.
    corners : Corners
        The treated vertebral body, px.
    reach_px : float
        How far from the cement seen the unseen cement may run (Euclidean), px, >= 0.

    Returns
    -------
    float
        px; NaN when no blind pixel qualifies.
    """
    _lines(corners)  # refused at once, not only when there is cement
    cement, blind = _check_mask(mask), _check_mask(blind)
    if blind.shape != cement.shape:
        raise ArgumentError(f"`blind` must be shaped like `mask` {cement.shape}; got {blind.shape}")
    if not (math.isfinite(reach_px) and reach_px >= 0):
        raise ArgumentError(f"`reach_px` must be a finite number >= 0; got {reach_px!r}")
    if not (cement.any() and blind.any()):
        return math.nan
    labels, _ = ndimage.label(blind | cement, structure=np.ones((3, 3), bool))
    joined = np.isin(labels, np.unique(labels[cement])) & blind
    within = ndimage.distance_transform_edt(~cement) <= reach_px
    return front_to_wall_px(joined & within, corners)


def depth_fraction(mask, corners: Corners) -> float:
    """Where the most posterior cement lies on the body's anterior->posterior axis.

    The most posterior cement pixel is the one of the band nearest the posterior-wall
    line (the pixel that sets :func:`front_to_wall_px`). At distance ``a`` from the
    anterior-wall line and ``b`` from the posterior-wall line (both signed positive toward
    the body) its depth is ``a / (a + b)``: 0 on the anterior wall, 1 on the posterior
    wall, above 1 behind it.

    Parameters
    ----------
    mask : ndarray, bool, shape [rows, cols]
        Cement pixels.
    corners : Corners
        The treated vertebral body, px.

    Returns
    -------
    float
        Dimensionless; NaN when no cement lies in the band.
    """
    return front_and_depth(mask, corners)[1]


def front_and_depth(mask, corners: Corners) -> tuple[float, float]:
    """:func:`front_to_wall_px` (px) and :func:`depth_fraction` of ``mask`` (bool ``[rows, cols]``)
    against ``corners``, from one pass over its pixels; NaN, NaN when no cement lies in the band."""
    xs, ys, lines = _band_cement(mask, corners)
    if xs.size == 0:
        return math.nan, math.nan
    to_wall = _distance(lines["posterior"], xs, ys)
    k = int(np.argmin(to_wall))  # (the front)
    a, b = float(_distance(lines["anterior"], xs[k : k + 1], ys[k : k + 1])[0]), float(to_wall[k])
    return b, (a / (a + b) if a + b > 0 else math.nan)


# Cement this far beyond the body's outline is a leak whatever the outline's error, mm.
_MAX_LEAK_MARGIN_MM = 5.0


@dataclass(frozen=True)
class LeakRules:
    """How cement outside the body is told apart and classified.

    Attributes
    ----------
    margin_mm : float
        Cement within this distance outside the body's edges is not a leak (edge blur of
        the segmentation and of annotated corners), mm at the isocentre, at most 5.
    min_area_mm2 : float
        Smaller outside components are no leak, mm^2; a frame holding only such cement
        beyond ``margin_mm`` is unreliable (``leak_uncertain``) unless it warns or stops.
    automatic_corner_margin_mm : float
        Added to ``margin_mm`` when the corners were found automatically, mm, at most 5 (see
        :meth:`for_automatic_corners`). Their error is 0.25 mm median, 0.4 mm 95th
        percentile on the phantom (``benchmarks/anatomy.py``); there 0.1 mm gives no
        leak on any no_leak case, and 0.3 mm delayed a vein's first frame.
    venous_max_width_mm : float
        A venous channel is at most this wide, mm (the width is the median of its pixels'
        local thickness, the diameter of the widest disc inside it that holds each). The
        phantom's 2 mm veins read up to 3.1 mm (the rim the segmentation adds at the
        lowest dose); at 3 mm one of the accuracy benchmark's 360 runs read its vein anterior.
    venous_min_elongation : float
        ... and at least this elongated: length / width, with length = area / width.
    """

    margin_mm: float = 0.1
    min_area_mm2: float = 0.25
    automatic_corner_margin_mm: float = 0.1
    venous_max_width_mm: float = 3.5
    venous_min_elongation: float = 2.0

    def __post_init__(self):
        for name in ("margin_mm", "automatic_corner_margin_mm"):  # (farther out, no leak would ever count)
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= _MAX_LEAK_MARGIN_MM):
                raise ArgumentError(f"`{name}` must be a finite number in [0, {_MAX_LEAK_MARGIN_MM:g}] mm; got {value!r}")
        if not (math.isfinite(self.min_area_mm2) and self.min_area_mm2 >= 0):
            raise ArgumentError(f"`min_area_mm2` must be a finite number >= 0; got {self.min_area_mm2!r}")
        for name in ("venous_max_width_mm", "venous_min_elongation"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ArgumentError(f"`{name}` must be a finite number > 0; got {value!r}")


    def for_automatic_corners(self) -> LeakRules:
        """The rules to use with corners found automatically: the margin widened by their error."""
        return replace(self, margin_mm=self.margin_mm + self.automatic_corner_margin_mm)


# Bounding line of the body -> leak class of cement beyond it.
_SIDE_CLASS = {
    "posterior": "posterior",
    "superior": "disc_superior",
    "inferior": "disc_inferior",
    "anterior": "anterior",
}


def _width_and_elongation(component: np.ndarray) -> tuple[float, float]:
    """Width (px) and length/width of one component ``[r, c]`` (bool, cropped).

    The width is the median over the component's pixels of its local thickness: the
    diameter of the widest disc inside the component that holds the pixel, ``2 d - 1`` for a
    disc centred on a pixel ``d`` from the background (a pixel centred in a line ``w`` px
    wide is ``(w + 1) / 2`` from it). A channel's local bulges and a blob's corners are few of
    its pixels. (The median distance to the background along the skeleton, as before, read a
    4 x 4 mm square turned 5-30 degrees as 1.8-2.1 mm wide, venous: a turned square's
    skeleton is mostly its diagonals, whose discs shrink to its corners.) The length is the
    area over the width.
    """
    padded = np.pad(component, 1)
    dist = ndimage.distance_transform_edt(padded)
    thickness = np.where(padded, 2.0 * dist - 1.0, 0.0)
    # The discs to paint: those no neighbour's disc holds (their centres run along the
    # component's ridges), within half a pixel (the distances are to pixel centres).
    centres = padded.copy()
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        centres &= np.roll(dist, (-dy, -dx), axis=(0, 1)) < dist + math.hypot(dy, dx) - 0.5
    for row, col in zip(*np.nonzero(centres)):
        radius = dist[row, col]
        reach = int(math.ceil(radius))
        top, left = max(row - reach, 0), max(col - reach, 0)
        window = thickness[top : row + reach + 1, left : col + reach + 1]
        dy, dx = np.ogrid[top - row : top - row + window.shape[0], left - col : left - col + window.shape[1]]
        np.maximum(window, np.where(dy * dy + dx * dx < radius * radius, 2.0 * radius - 1.0, 0.0), out=window)
    width = max(float(np.median(thickness[padded])), 1.0)
    return width, float(component.sum()) / width**2


def _beyond_body(mask, corners: Corners, *, mm_per_px: float, margin_mm: float):
    """The cement farther than ``margin_mm`` outside the body, in the cement's bounding box
    (the per-frame cost follows the cement, not the image): the signed distances to the
    body's lines there (float64 ``[4, r, c]`` px, in the order of :data:`_SIDE_CLASS`) and
    where that cement is (bool ``[r, c]``); None when there is no cement."""
    mask, lines = _check_mask(mask), _lines(corners)
    if not (isinstance(mm_per_px, numbers.Real) and math.isfinite(mm_per_px) and mm_per_px > 0):  # (numpy's too)
        raise ArgumentError(f"`mm_per_px` must be a finite number > 0; got {mm_per_px!r}")
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    r0, c0 = rows.min(), cols.min()
    crop = mask[r0 : rows.max() + 1, c0 : cols.max() + 1]
    xs, ys = _grid(crop.shape)
    xs += c0
    ys += r0
    dist = np.stack([_distance(lines[side], xs, ys) for side in _SIDE_CLASS])
    return dist, crop & (dist.min(axis=0) < -margin_mm / mm_per_px)


def cement_outside_body_px(mask, corners: Corners, *, mm_per_px: float, rules: LeakRules = LeakRules()) -> int:
    """Cement pixels farther than ``rules.margin_mm`` outside the vertebral body.

    The parameters are :func:`classify_leaks`'s (of ``rules``, only ``margin_mm`` counts
    here), and so are its errors. Where it finds no leak, these pixels are blobs under
    ``rules.min_area_mm2``: too little to call a leak, yet cement beyond the outline, as
    the first pixels of a leak are.
    """
    beyond = _beyond_body(mask, corners, mm_per_px=mm_per_px, margin_mm=rules.margin_mm)
    return 0 if beyond is None else int(np.count_nonzero(beyond[1]))


def classify_leaks(mask, corners: Corners, *, mm_per_px: float, rules: LeakRules = LeakRules()) -> dict[str, float]:
    """Area of cement outside the vertebral body, per leak class.

    Cement farther than ``rules.margin_mm`` outside the body is split into connected
    components (8-connectivity); components smaller than ``rules.min_area_mm2`` are
    dropped. Each component lies beyond the side of the body that most of its pixels are
    beyond, a pixel being beyond the body line it is farthest outside of (posterior wall
    -> ``posterior``, superior endplate -> ``disc_superior``, inferior endplate ->
    ``disc_inferior``, anterior wall -> ``anterior``). Two places set the class whatever
    the shape: a component beyond an endplate with at least half of its pixels between
    the anterior and posterior wall lines lies in the disc space (a disc leak: cement
    spreads there as a thin sheet along the endplate), and one behind the posterior wall
    with at least half of its pixels between the endplate lines lies in the canal or a
    foramen (``posterior``: a thin channel there runs in the canal, where cement is most
    dangerous). Any other thin elongated component is ``venous`` wherever it runs (width
    at most ``rules.venous_max_width_mm``, length/width at least
    ``rules.venous_min_elongation``); the rest take the class of their side.

    Parameters
    ----------
    mask : ndarray, bool, shape [rows, cols]
        Cement pixels.
    corners : Corners
        The treated vertebral body, px.
    mm_per_px : float
        Pixel size at the isocentre, mm; for an uncalibrated study pass a nominal value.
    rules : LeakRules
        Thresholds of the classification.

    Returns
    -------
    dict of str to float
        Leak class (of :data:`LEAK_CLASSES`, in that order) -> area in px, only classes
        with leaked cement.

    Raises
    ------
    ValueError
        ``mm_per_px`` is not a finite number > 0, or ``mask`` is not 2-D bool.
    """
    cement_beyond = _beyond_body(mask, corners, mm_per_px=mm_per_px, margin_mm=rules.margin_mm)
    min_area_px = rules.min_area_mm2 / mm_per_px**2
    if cement_beyond is None or np.count_nonzero(cement_beyond[1]) < min_area_px:
        return {}  # too little for any leak (most frames)
    dist, outside = cement_beyond
    sides = list(_SIDE_CLASS)
    found = np.zeros(len(LEAK_CLASSES))
    labels, count = ndimage.label(outside, structure=np.ones((3, 3), dtype=bool))
    beyond = np.argmin(dist, axis=0)  # index into `sides` of the most violated line
    # Between the anterior and the posterior wall lines: where the disc spaces project.
    between_walls = (dist[sides.index("anterior")] >= 0) & (dist[sides.index("posterior")] >= 0)
    between_endplates = (dist[sides.index("superior")] >= 0) & (dist[sides.index("inferior")] >= 0)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        component = labels[box] == index
        area = float(component.sum())
        if area < min_area_px:
            continue
        votes = np.bincount(beyond[box][component], minlength=len(sides))
        leak = _SIDE_CLASS[sides[int(np.argmax(votes))]]
        # In the disc space or in the canal, the place sets the class, not the shape.
        level = between_walls if leak.startswith("disc_") else between_endplates if leak == "posterior" else None
        if level is None or 2 * np.count_nonzero(level[box][component]) < area:
            width, elongation = _width_and_elongation(component)
            if width * mm_per_px <= rules.venous_max_width_mm and elongation >= rules.venous_min_elongation:
                leak = "venous"
        found[LEAK_CLASSES.index(leak)] += area
    return {name: float(area) for name, area in zip(LEAK_CLASSES, found) if area > 0}


class FrontSpeedEstimator:
    """Speed of the cement front toward the posterior wall, robust to noise.

    The Theil-Sen slope (median of the pairwise slopes) of the front-to-wall distance over
    the samples of the last ``window_s`` seconds, at most the last ``max_samples`` of them
    (memory and work per update stay bounded: 64 samples cover 1 s up to 64 fps).

    Parameters
    ----------
    window_s : float
        Length of the sliding window, s.
    max_samples : int
        Most samples kept (the oldest go first).

    Examples
    --------
    >>> est = FrontSpeedEstimator(window_s=1.0)
    >>> for t in (0.0, 0.1, 0.2, 0.3):
    ...     speed = est.update(t, 10.0 - 2.0 * t)
    >>> round(speed, 6)
    2.0
    """

    def __init__(self, window_s: float = 1.0, *, max_samples: int = 64):
        if not (math.isfinite(window_s) and window_s > 0):
            raise ArgumentError(f"`window_s` must be a finite number > 0; got {window_s!r}")
        if max_samples < 2:
            raise ArgumentError(f"`max_samples` must be >= 2; got {max_samples!r}")
        self.window_s = float(window_s)
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(max_samples))

    def update(self, time_s: float, front_to_wall_mm: float) -> float:
        """Add one frame's front distance and return the current speed.

        Parameters
        ----------
        time_s : float
            Time of the frame, s; non-decreasing from call to call.
        front_to_wall_mm : float
            The front's distance to the wall (mm, or px for a speed in px/s); NaN (no
            front) adds nothing.

        Returns
        -------
        float
            Speed toward the wall (distance units per second, positive when approaching);
            NaN with fewer than two samples in the window.
        """
        if math.isfinite(front_to_wall_mm):
            self._samples.append((float(time_s), float(front_to_wall_mm)))
        while self._samples and self._samples[0][0] < time_s - self.window_s:
            self._samples.popleft()
        if len(self._samples) < 2:
            return math.nan
        t, d = np.array(self._samples).T
        i, j = np.triu_indices(t.size, k=1)
        dt = t[j] - t[i]
        ok = dt > 0
        if not np.any(ok):
            return math.nan
        return float(-np.median((d[j] - d[i])[ok] / dt[ok]))


def time_to_wall_s(front_to_wall_mm: float, speed_mm_s: float) -> float:
    """Time for the front to reach the wall at the current speed, s.

    Parameters
    ----------
    front_to_wall_mm : float
        Distance of the front to the wall, mm; at or behind the wall gives 0.
    speed_mm_s : float
        Speed toward the wall, mm/s.

    Returns
    -------
    float
        s; NaN when the front is not approaching (speed <= 0 or unknown) or unknown.
    """
    if not (math.isfinite(front_to_wall_mm) and math.isfinite(speed_mm_s)) or speed_mm_s <= 0:
        return math.nan
    return max(front_to_wall_mm, 0.0) / speed_mm_s
