"""``find_anatomy``: the needle, then the body it enters, its corners and a confidence."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from vpimage.anatomy._confidence import MIN_CONFIDENCE, confidence, field_cut_factor
from vpimage.anatomy._frame import BodyFrame, dominant_orientation, gradients
from vpimage.anatomy._needle import find_needles
from vpimage.anatomy._pedicles import find_pedicles
from vpimage.anatomy._priors import PRIORS
from vpimage.anatomy._sides import field_shows_beyond, fit_side, place_side
from vpimage.anatomy._types import Anatomy, NeedleTrack
from vpimage.errors import ArgumentError
from vpimage.measures import Corners

__all__ = ["find_anatomy"]

logger = logging.getLogger(__name__)

_ORIENTATION_RADIUS_MM = 30.0  # the body's edges are looked for this far around the tip
_NEEDLE_MARGIN_MM = 1.5  # the image this close to the shaft is not used for the body's edges
_FIELD_MARGIN_PX = 4  # nor this close to the field's edge
_INSET = 0.15  # sides are fitted between their neighbours, less this share at each end


def find_anatomy(image: np.ndarray, *, mm_per_px: float, fov_mask: np.ndarray | None = None,
                 view: str = "lateral", min_confidence: float = MIN_CONFIDENCE) -> Anatomy:
    """Find the needle and the treated vertebral body's corners in a pre-injection image.

    The needle is the longest straight, very dense, thin object (the image near any other
    shaft, as in a bipedicular approach, is left out too). The treated body is the one it
    enters: its axes are the right-angled edge orientation around the tip (the one
    nearer the needle runs across the body; in the AP view, where a caudally angled shaft
    can image steeper than 45 degrees, the one nearer the image's rows, toward the hub's
    side), its sides the outward falls of attenuation at
    the distances that lumbar and thoracic bodies allow from a transpedicular tip (in the
    lateral view the tip lies in the body's anterior part and the shaft leaves through the
    posterior wall), each refined into a straight line; the corners are where the lines
    meet. Where the field ends before the farthest a side could lie beyond the one found,
    that side counts only if it steps down as a wall does (else ``"field_cuts_body"``).

    Parameters
    ----------
    image : ndarray, float32, shape [rows, cols]
        Pre-injection attenuation image (higher = more attenuating), e.g. the mean of the
        first frames after :func:`vpimage.kernels.attenuation`.
    mm_per_px : float
        mm at the isocentre per pixel.
    fov_mask : ndarray of bool, shape [rows, cols], optional
        The exposed field (everything when None).
    view : {"lateral", "ap"}
        Lateral: corners as CONTRACT.md defines them, the posterior wall on the needle's
        side. AP: the outline of the body's frontal projection, ``anterior_*`` on the
        image left, and the pedicles seen inside it.
    min_confidence : float, optional
        Below it, ``corners`` is None and ``reason`` is ``"low_confidence"``.

    Returns
    -------
    Anatomy

    Raises
    ------
    ValueError
        ``image`` is not 2-D, ``fov_mask`` does not match it, ``mm_per_px`` is not a
        positive number, or ``view`` is unknown.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ArgumentError(f"`image` must be shaped [rows, cols]; got shape {image.shape}.")
    fov_mask = np.ones(image.shape, bool) if fov_mask is None else np.asarray(fov_mask, dtype=bool)
    if fov_mask.shape != image.shape:
        raise ArgumentError(f"`fov_mask` must be shaped {image.shape}; got {fov_mask.shape}.")
    if isinstance(mm_per_px, bool) or not (np.isscalar(mm_per_px) and np.isfinite(mm_per_px) and mm_per_px > 0):
        raise ArgumentError(f"`mm_per_px` must be a positive number; got {mm_per_px!r}.")
    mm_per_px = float(mm_per_px)
    if view not in PRIORS:
        raise ArgumentError(f"`view` must be 'lateral' or 'ap'; got {view!r}.")
    if not fov_mask.any():
        return Anatomy(None, 0.0, view, reason="body_not_found")
    image = np.where(fov_mask, image, np.float32(np.median(image[fov_mask])))
    needles = find_needles(image, mm_per_px=mm_per_px, fov_mask=fov_mask)
    if not needles:
        return Anatomy(None, 0.0, view, reason="needle_not_found")
    needle = needles[0]  # the longest; a second one (bipedicular) ends in the same body
    field = ndi.binary_erosion(fov_mask, iterations=_FIELD_MARGIN_PX)
    weight = field.copy()
    for shaft in needles:
        weight &= ~_needle_band(shaft, image.shape, mm_per_px)
    field, weight = field.astype(np.float32), weight.astype(np.float32)
    gx, gy = gradients(image, mm_per_px=mm_per_px)
    near = _disc(needle.tip_px, _ORIENTATION_RADIUS_MM / mm_per_px, image.shape)
    angle = dominant_orientation(gx, gy, weight * near)
    frame = BodyFrame.around(needle.tip_px, angle, _across_hint(needle, view), mm_per_px)
    derivatives = (gx * frame.a[0] + gy * frame.a[1], gx * frame.c[0] + gy * frame.c[1])
    sides = _fit_body(frame, derivatives, weight, image, PRIORS[view], _noise(derivatives, weight * near))
    front_is_anterior = view == "lateral" or frame.a[0] >= 0  # AP: anterior_* are on the image left
    corners = _corners(frame, sides, front_is_anterior)
    names = ("anterior", "posterior") if front_is_anterior else ("posterior", "anterior")
    support = {name: round(side.support, 3) for name, side in zip(names + ("superior", "inferior"), sides)}
    score = confidence(corners, sides, needle, mm_per_px=mm_per_px, view=view)
    cut = field_cut_factor(sides, _open_sides(frame, sides, field, PRIORS[view]))
    logger.debug("anatomy: confidence %.2f (x %.2f for the field's edge), sides %s", score, cut, support)
    if corners is None or score * cut < min_confidence:
        reason = ("body_not_found" if corners is None  # no four sides
                  else "low_confidence" if score < min_confidence else "field_cuts_body")
        return Anatomy(None, score * cut, view, needle=needle, reason=reason, side_support=support)
    pedicles = find_pedicles(image, corners, mm_per_px=mm_per_px, usable=weight > 0) if view == "ap" else ()
    return Anatomy(corners, score * cut, view, needle=needle, pedicles_px=pedicles, side_support=support)


def _across_hint(needle: NeedleTrack, view: str) -> tuple[float, float]:
    """A direction the body's across axis lies nearer than its axis along the spine (which
    runs along the image's columns, give or take its tilt): the needle in the lateral view;
    in the AP view, the image's rows toward the hub (the shaft may image steeper than 45 deg)."""
    if view == "lateral":
        return needle.direction
    return (1.0 if needle.direction[0] >= 0 else -1.0, 0.0)


def _needle_band(needle: NeedleTrack, shape, mm_per_px: float) -> np.ndarray:
    """Pixels within the shaft's half width plus a margin of its axis segment."""
    rows, cols = np.indices(shape, dtype=np.float64)
    tip, d = np.asarray(needle.tip_px), np.asarray(needle.direction)
    px, py = cols - tip[0], rows - tip[1]
    along = np.clip(px * d[0] + py * d[1], 0.0, needle.length_mm / mm_per_px)
    distance = np.hypot(px - along * d[0], py - along * d[1])
    return distance <= (needle.width_mm / 2 + _NEEDLE_MARGIN_MM) / mm_per_px


def _disc(centre, radius_px: float, shape) -> np.ndarray:
    rows, cols = np.indices(shape, dtype=np.float64)
    return ((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius_px**2).astype(np.float32)


def _noise(derivatives, weight: np.ndarray) -> float:
    """Robust sigma of the image derivatives where ``weight`` > 0 (most pixels are no edge)."""
    values = np.concatenate([d[weight > 0] for d in derivatives])
    if values.size == 0:
        return 1.0
    return max(float(1.4826 * np.median(np.abs(values - np.median(values)))), 1e-6)


def _fit_body(frame, derivatives, weight, image, prior, noise):
    """The four fitted sides ``(front, back, top, bottom)``: placed (front and back near the
    tip's height, then top and bottom between them, then front and back again between
    those), then each refined into a line between its neighbours (``image`` gives their steps)."""
    args = (frame, derivatives, weight)
    mid = prior.mid_height_mm
    front = place_side(*args, "front", prior.front_mm, (-mid, mid))
    back = place_side(*args, "back", prior.back_mm, (-mid, mid))
    inner = _shrunk(front, back)
    top = place_side(*args, "top", prior.top_mm, inner)
    bottom = place_side(*args, "bottom", prior.bottom_mm, inner)
    inner = _shrunk(top, bottom)
    front = place_side(*args, "front", prior.front_mm, inner)
    back = place_side(*args, "back", prior.back_mm, inner)
    across, down = _shrunk(front, back, _INSET), _shrunk(top, bottom, _INSET)
    return tuple(
        fit_side(*args, name, position, span, noise, image)
        for name, position, span in (("front", front, down), ("back", back, down), ("top", top, across),
                                     ("bottom", bottom, across))
    )


def _open_sides(frame, sides, field, prior) -> tuple[bool, ...]:
    """Per side ``(front, back, top, bottom)``, whether the field ends before where the true
    side could still lie beyond the one found: the prior's range for it, and no farther
    from the opposite side than the largest plausible body."""
    front, back, top, bottom = sides
    reaches = (max(prior.front_mm[0], back.offset - prior.across_mm[1]),
               min(prior.back_mm[1], front.offset + prior.across_mm[1]),
               max(prior.top_mm[0], bottom.offset - prior.height_mm[1]),
               min(prior.bottom_mm[1], top.offset + prior.height_mm[1]))
    spans = ((top.offset, bottom.offset),) * 2 + ((front.offset, back.offset),) * 2
    return tuple(not field_shows_beyond(frame, field, side, reach, _shrunk(*span, _INSET))
                 for side, reach, span in zip(sides, reaches, spans))


def _shrunk(lo: float, hi: float, share: float = 0.2) -> tuple[float, float]:
    inset = share * (hi - lo)
    return lo + inset, hi - inset


def _meet(across_side, along_side) -> tuple[float, float]:
    """``(s, t)`` where a front/back line meets a top/bottom line."""
    o1, m1, c1 = across_side.offset, across_side.slope, across_side.centre
    o2, m2, c2 = along_side.offset, along_side.slope, along_side.centre
    s = (o1 + m1 * (o2 - m2 * c2 - c1)) / (1.0 - m1 * m2)
    return s, o2 + m2 * (s - c2)


def _corners(frame: BodyFrame, sides, front_is_anterior: bool) -> Corners | None:
    """The four corners where the fitted sides meet, named; None if not a convex quadrilateral."""
    front, back, top, bottom = sides
    anterior, posterior = (front, back) if front_is_anterior else (back, front)
    points = [_meet(anterior, top), _meet(posterior, top), _meet(posterior, bottom), _meet(anterior, bottom)]
    try:
        return Corners(*(tuple(frame.to_px(*st)) for st in points))
    except ValueError:
        return None
