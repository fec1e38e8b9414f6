"""The four sides of a vertebral body as straight edges of its projection.

A side is where the projected bone ends: going outward across it the attenuation falls
(the cortical shell, seen edge-on, is the last bright rim). In a :class:`BodyFrame` the
sides ``front`` (smallest ``s``), ``back`` (largest ``s``, the needle's side), ``top``
(smallest ``t``) and ``bottom`` are first placed as the strongest outward fall of the
gradient averaged along them, then refined as a straight line through the edge found at
each millimetre along the side. A wall steps down to what lies beyond it (soft tissue, the
canal, a disc); an edge in the bone's texture falls by less, so each side's step is kept,
and whether the field shows all of where the side could still lie beyond the one found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpimage.anatomy._frame import BodyFrame

__all__ = ["SIDES", "Side", "field_shows_beyond", "fit_side", "place_side"]

# side -> (axis across it: 0 for s, 1 for t; outward sign)
SIDES = {"front": (0, -1.0), "back": (0, 1.0), "top": (1, -1.0), "bottom": (1, 1.0)}

_STEP_MM = 0.2  # sampling step across a side
_ALONG_MM = 1.0  # spacing of the edge samples along a side
_WINDOW_MM = 3.0  # the refined edge is looked for this far either side of the placed one
_INLIER_MM = 1.0  # an edge sample this near the fitted line supports it
_MIN_STRENGTH = 3.0  # ... when its outward fall exceeds this many noise sigmas of the gradient
_STEP_BAND_MM = (1.0, 3.0)  # a side's step: the image this far inside it less as far outside


@dataclass(frozen=True)
class Side:
    """A fitted side: ``normal = offset + slope * (along - centre)`` in frame mm.

    Attributes
    ----------
    name : str
        ``front``, ``back``, ``top`` or ``bottom``.
    offset, slope, centre : float
        The line, in the frame coordinate across the side as a function of the one along it.
    support : float
        Share of the edge samples that lie on the line with a clear edge, 0-1, over the
        samples the image shows (at least half the side).
    step : float
        How much more the image attenuates :data:`_STEP_BAND_MM` inside the line than as
        far outside it: the median over the samples where the field shows both, else 0;
        attenuation units.
    """

    name: str
    offset: float
    slope: float
    centre: float
    support: float
    step: float

    def across_at(self, along: np.ndarray) -> np.ndarray:
        """The line's frame coordinate across the side at ``along`` (mm)."""
        return self.offset + self.slope * (np.asarray(along, dtype=np.float64) - self.centre)


def _points(axis: int, normal, along) -> tuple[np.ndarray, np.ndarray]:
    """``(s, t)`` from coordinates across (``normal``) and along a side."""
    return (normal, along) if axis == 0 else (along, normal)


def place_side(frame: BodyFrame, derivatives, weight: np.ndarray, name: str, across_mm, along_mm) -> float:
    """Where the side ``name`` lies: the strongest mean outward fall in ``across_mm``.

    Parameters
    ----------
    frame : BodyFrame
    derivatives : tuple of ndarray
        Image derivatives along the frame's ``a`` and ``c`` axes, per mm, [rows, cols].
    weight : ndarray, float32, [rows, cols]
        1 where the image may be trusted (inside the field, off the needle), else 0.
    name : str
        One of :data:`SIDES`.
    across_mm, along_mm : (float, float)
        Ranges searched across the side and averaged along it, mm.

    Returns
    -------
    float
        Frame coordinate across the side, mm.
    """
    axis, sign = SIDES[name]
    across = np.arange(across_mm[0], across_mm[1] + _STEP_MM / 2, _STEP_MM)
    along = np.arange(along_mm[0], along_mm[1] + _ALONG_MM / 2, _ALONG_MM / 2)
    normal, parallel = np.meshgrid(across, along, indexing="ij")
    s, t = _points(axis, normal, parallel)
    w = frame.sample(weight, s, t)
    d = frame.sample(derivatives[axis], s, t)
    profile = -sign * (w * d).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-6)
    return float(across[int(np.argmax(profile))])


def fit_side(frame: BodyFrame, derivatives, weight: np.ndarray, name: str, position: float, along_mm, noise: float,
             image: np.ndarray) -> Side:
    """Refine side ``name`` placed at ``position`` into a straight line along ``along_mm``.

    At every millimetre along the side the outward fall is looked for within
    :data:`_WINDOW_MM` of ``position`` (sub-sample peak); a line is fitted to the clear
    edges, then refitted twice without the samples farther than :data:`_INLIER_MM` from it.

    Parameters
    ----------
    frame, derivatives, weight, name
        As for :func:`place_side`.
    position : float
        Where the side was placed, frame mm across it.
    along_mm : (float, float)
        The stretch along the side that is fitted, mm.
    noise : float
        Noise sigma of the image derivative, per mm: a clear edge falls by more than
        :data:`_MIN_STRENGTH` of them.
    image : ndarray, float32, [rows, cols]
        The attenuation image whose ``derivatives`` these are (for the side's step).

    Returns
    -------
    Side
    """
    axis, sign = SIDES[name]
    along = np.arange(along_mm[0], along_mm[1] + _ALONG_MM / 2, _ALONG_MM)
    across = np.arange(-_WINDOW_MM, _WINDOW_MM + _STEP_MM / 2, _STEP_MM)
    normal, parallel = np.meshgrid(position + across, along, indexing="ij")
    s, t = _points(axis, normal, parallel)
    fall = -sign * frame.sample(derivatives[axis], s, t)
    trusted = frame.sample(weight, s, t).min(axis=0) > 0.5
    peak = np.argmax(fall, axis=0)
    edge = position + across[peak] + _subsample(fall, peak) * _STEP_MM
    strength = fall[peak, np.arange(along.size)] / noise
    usable = trusted & (strength > _MIN_STRENGTH) & (peak > 0) & (peak < across.size - 1)
    centre = float(np.mean(along))
    offset, slope, inliers = position, 0.0, usable
    for _ in range(3):
        if inliers.sum() < 3:
            break
        slope, offset = np.polyfit(along[inliers] - centre, edge[inliers], 1)
        inliers = usable & (np.abs(edge - (offset + slope * (along - centre))) <= _INLIER_MM)
    # What the needle or the field's edge hides is no evidence against the side, up to half of it.
    support = float(inliers.sum() / max(trusted.sum(), 0.5 * along.size)) if along.size else 0.0
    line = offset + slope * (along - centre)
    return Side(name, float(offset), float(slope), centre, support, _step(frame, image, weight, name, line, along))


def _step(frame: BodyFrame, image: np.ndarray, weight: np.ndarray, name: str, line, along) -> float:
    """Median over ``along`` of the image :data:`_STEP_BAND_MM` inside ``line`` less as far
    outside it, where ``weight`` shows both bands (0 where it shows none)."""
    axis, sign = SIDES[name]
    band = np.arange(_STEP_BAND_MM[0], _STEP_BAND_MM[1] + _STEP_MM / 2, _STEP_MM)
    means, shown = [], np.ones(along.size, bool)
    for outward in (-sign, sign):
        normal, parallel = np.meshgrid(outward * band, along, indexing="ij")
        s, t = _points(axis, line + normal, parallel)
        shown &= frame.sample(weight, s, t).min(axis=0) > 0.5
        means.append(frame.sample(image, s, t).mean(axis=0))
    return float(np.median((means[0] - means[1])[shown])) if shown.any() else 0.0


def field_shows_beyond(frame: BodyFrame, field: np.ndarray, side: Side, reach_mm: float, along_mm) -> bool:
    """Whether ``field`` shows everything from ``side`` outward to ``reach_mm`` (the farthest
    frame coordinate the side could lie at) along ``along_mm``: if not, the true side may
    lie past the field's edge and the one found be an edge inside the body.

    Parameters
    ----------
    frame : BodyFrame
    field : ndarray, float32, [rows, cols]
        1 inside the exposed field (off its edge), else 0.
    side : Side
    reach_mm : float
        Frame coordinate across the side, mm.
    along_mm : (float, float)
        The stretch along the side, mm.
    """
    axis, sign = SIDES[side.name]
    along = np.arange(along_mm[0], along_mm[1] + _ALONG_MM / 2, _ALONG_MM)
    line = side.across_at(along)
    depth = np.clip(sign * (reach_mm - line), 0.0, None)  # how far beyond the line the side could lie
    share = np.arange(0.0, 1.0 + 1e-9, _STEP_MM / max(float(depth.max()), _STEP_MM))
    normal, parallel = np.meshgrid(share, along, indexing="ij")
    s, t = _points(axis, line + sign * normal * depth, parallel)
    return bool(frame.sample(field, s, t).min() > 0.5)


def _subsample(values: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Offset (in samples, -0.5 to 0.5) of each column's parabolic peak around ``peak``."""
    cols = np.arange(values.shape[1])
    lo = values[np.clip(peak - 1, 0, values.shape[0] - 1), cols]
    mid = values[peak, cols]
    hi = values[np.clip(peak + 1, 0, values.shape[0] - 1), cols]
    denom = lo - 2 * mid + hi
    safe = np.where(np.abs(denom) > 1e-12, denom, -1.0)
    return np.clip(np.where(np.abs(denom) > 1e-12, 0.5 * (lo - hi) / safe, 0.0), -0.5, 0.5)
