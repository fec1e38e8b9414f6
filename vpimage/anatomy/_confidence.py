"""How far to trust a found body: edge support of its sides, its shape, the needle in it,
and whether a side the field's edge may hide steps down as a wall does."""

from __future__ import annotations

import numpy as np

from vpimage.anatomy._priors import PRIORS
from vpimage.anatomy._types import NeedleTrack
from vpimage.measures import Corners

__all__ = ["MIN_CONFIDENCE", "confidence", "field_cut_factor"]

#: Below this confidence the body counts as not found (frames ``unreliable``, ``wall_not_found``).
MIN_CONFIDENCE = 0.5

_WEAKEST_SIDE = 0.4  # a side supported on less than this share of its length lowers the score
_RIGHT_ANGLE_DEG = (10.0, 25.0)  # corners this far from 90 degrees: no penalty ... score 0
_SIZE_SLACK = 0.2  # sizes this far (relative) outside the prior's range bring the score to 0
# A side the field may hide: its step over the other sides' median step, full score ... score 0.
# On the phantom walls step 0.66-1.0 of it; edges inside a body the field cuts 0-0.40.
_HIDDEN_SIDE_STEP = (0.6, 0.45)


def confidence(corners: Corners | None, sides, needle: NeedleTrack, *, mm_per_px: float, view: str) -> float:
    """Confidence in ``corners``, 0-1.

    The mean edge support of the four sides, lowered when the weakest side is poorly
    supported, when the quadrilateral is far from right-angled, when its size is outside
    what lumbar and thoracic bodies allow, and zero when the needle's tip is outside it.

    Parameters
    ----------
    corners : Corners or None
    sides : sequence of Side
        The four fitted sides (their ``support`` is used).
    needle : NeedleTrack
    mm_per_px : float
    view : {"lateral", "ap"}
    """
    if corners is None:
        return 0.0
    supports = np.array([side.support for side in sides])
    score = float(supports.mean()) * min(1.0, float(supports.min()) / _WEAKEST_SIDE)
    points = corners.as_array()
    score *= _ramp(_worst_angle_deg(points), *_RIGHT_ANGLE_DEG)
    prior = PRIORS[view]
    across = 0.5 * (np.linalg.norm(points[1] - points[0]) + np.linalg.norm(points[2] - points[3])) * mm_per_px
    height = 0.5 * (np.linalg.norm(points[3] - points[0]) + np.linalg.norm(points[2] - points[1])) * mm_per_px
    score *= _within(across, prior.across_mm) * _within(height, prior.height_mm)
    if not _inside(points, np.asarray(needle.tip_px)):
        return 0.0
    return float(np.clip(score, 0.0, 1.0))


def _ramp(value: float, full: float, zero: float) -> float:
    """1 up to ``full``, 0 from ``zero``, linear between."""
    return float(np.clip((zero - value) / (zero - full), 0.0, 1.0))


def _within(value: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    if value < lo:
        return _ramp(lo / value - 1.0, 0.0, _SIZE_SLACK)
    if value > hi:
        return _ramp(value / hi - 1.0, 0.0, _SIZE_SLACK)
    return 1.0


def _worst_angle_deg(points: np.ndarray) -> float:
    """Largest departure of the quadrilateral's corner angles from 90 degrees."""
    worst = 0.0
    for i in range(4):
        u, v = points[i - 1] - points[i], points[(i + 1) % 4] - points[i]
        cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
        worst = max(worst, abs(90.0 - np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return worst


def _inside(points: np.ndarray, p: np.ndarray) -> bool:
    """Whether ``p`` lies inside the convex quadrilateral ``points`` [4, 2]."""
    edges = np.roll(points, -1, axis=0) - points
    rel = p - points
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    return bool(np.all(cross >= 0) or np.all(cross <= 0))


def field_cut_factor(sides, open_sides) -> float:
    """How far a body the field's edge may cut is still to be trusted, 0-1.

    A side in ``open_sides`` (the field ends where the true side could still lie, beyond
    the one found) counts only if it steps down about as much as the other sides: an edge
    inside a body that runs on past the field falls by far less than a wall.

    Parameters
    ----------
    sides : sequence of Side
        The four fitted sides (their ``step`` is used).
    open_sides : sequence of bool
        Per side, whether the field may hide the true one.
    """
    steps = np.array([side.step for side in sides])
    factor = 1.0
    for i in np.flatnonzero(open_sides):
        reference = float(np.median(np.delete(steps, i)))
        factor *= _ramp(steps[i] / reference, *_HIDDEN_SIDE_STEP) if reference > 0 else 0.0
    return factor
