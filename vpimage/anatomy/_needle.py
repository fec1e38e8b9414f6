"""The trocar: the longest straight, very dense, thin object of a pre-injection image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from vpimage.anatomy._types import NeedleTrack
from vpimage.kernels import get_backend

__all__ = ["find_needle"]

# A steel shaft adds this much attenuation over its local background along its core; bone
# edges and trabecular texture stay well below it.
NEEDLE_MIN_EXCESS = 2.5
# Trocars are 8-15 gauge: at most this wide, mm.
_MAX_WIDTH_MM = 4.0
# The local background is a grey opening this wide, mm: wider than a trocar, narrower than
# a vertebral body's texture.
_BACKGROUND_MM = 5.0
# What is shorter or stubbier than this is not a shaft.
_MIN_LENGTH_MM = 15.0
_MIN_ELONGATION = 5.0
# Pieces of the shaft (broken where the steel's excess dips) are joined across gaps up to
# this, mm: first when labelling, then along the found shaft's axis.
_JOIN_MM = 1.0
_MAX_GAP_MM = 4.0


def find_needle(image: np.ndarray, *, mm_per_px: float, fov_mask: np.ndarray,
                min_excess: float = NEEDLE_MIN_EXCESS) -> NeedleTrack | None:
    """Find the needle's shaft: tip, direction, length.

    The shaft is the longest long, thin connected set of pixels that stand out of their
    local background by ``min_excess`` (a morphological top-hat wider than any trocar),
    joined with the collinear pieces on its axis. Its axis is the principal axis of those
    pixels; its tip is the end farther from the edge of the field (the shaft enters the
    field from outside).

    Parameters
    ----------
    image : ndarray, float32, shape [rows, cols]
        Pre-injection attenuation (higher = more attenuating).
    mm_per_px : float
        mm at the isocentre per pixel.
    fov_mask : ndarray of bool, shape [rows, cols]
        The exposed field.
    min_excess : float, optional
        Attenuation over the local background that only steel reaches.

    Returns
    -------
    NeedleTrack or None
        None when no long thin dense object is seen.
    """
    background_px = 2 * int(np.ceil(_BACKGROUND_MM / 2 / mm_per_px)) + 1
    inner = ndi.binary_erosion(fov_mask, iterations=3)
    steel = get_backend("numpy").needle_mask(image, min_excess=min_excess, background_px=background_px) & inner
    # Pieces a pixel or two apart (the shaft's excess dips under the threshold in places,
    # most in small images) are labelled as one.
    labels, _ = ndi.label(ndi.binary_dilation(steel, iterations=max(1, round(_JOIN_MM / mm_per_px))))
    labels[~steel] = 0
    best = None
    for index, found in enumerate(ndi.find_objects(labels), start=1):
        if found is None:
            continue
        ys, xs = np.nonzero(labels[found] == index)
        if xs.size < 10:
            continue
        points = np.column_stack([xs + found[1].start, ys + found[0].start]).astype(np.float64)
        track = _shaft(points, mm_per_px)
        if track is not None and (best is None or track[2] > best[2]):
            best = track
    if best is None:
        return None
    ys, xs = np.nonzero(steel)
    centre, axis, length_mm, width_mm, (lo, hi) = _shaft(_collinear(np.column_stack([xs, ys]).astype(np.float64),
                                                                     best, mm_per_px), mm_per_px)
    distance_to_edge = ndi.distance_transform_edt(fov_mask)
    ends = [centre + lo * axis, centre + hi * axis]
    depth = [_value_at(distance_to_edge, p) for p in ends]
    tip, hub = (ends[0], ends[1]) if depth[0] >= depth[1] else (ends[1], ends[0])
    direction = (hub - tip) / np.linalg.norm(hub - tip)
    return NeedleTrack(tip_px=(float(tip[0]), float(tip[1])), direction=(float(direction[0]), float(direction[1])),
                       length_mm=float(length_mm), width_mm=float(width_mm))


def _collinear(points: np.ndarray, shaft, mm_per_px: float) -> np.ndarray:
    """The points on ``shaft``'s axis band, in the run along it (no gap over
    :data:`_MAX_GAP_MM`) that holds the shaft itself."""
    centre, axis, _, width_mm, (lo, hi) = shaft
    offsets = points - centre
    along = offsets @ axis
    across = offsets @ np.array([-axis[1], axis[0]])
    band = np.abs(across) <= 0.5 * width_mm / mm_per_px + 1.0
    order = np.argsort(along[band])
    run = along[band][order]
    breaks = np.flatnonzero(np.diff(run) > _MAX_GAP_MM / mm_per_px)
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks + 1, [run.size]])
    middle = 0.5 * (lo + hi)
    pick = next(i for i, (a, b) in enumerate(zip(starts, stops)) if run[a] <= middle <= run[b - 1] or b == run.size)
    return points[band][order][starts[pick]:stops[pick]]


def _shaft(points: np.ndarray, mm_per_px: float):
    """``(centre, axis, length_mm, width_mm, (lo, hi))`` of a long thin pixel set, else None."""
    centre = points.mean(axis=0)
    offsets = points - centre
    values, vectors = np.linalg.eigh(offsets.T @ offsets / len(points))
    axis = vectors[:, 1]
    along = offsets @ axis
    across = offsets @ vectors[:, 0]
    lo, hi = float(along.min()), float(along.max())
    length_mm = (hi - lo + 1.0) * mm_per_px
    width_mm = (np.percentile(across, 98) - np.percentile(across, 2) + 1.0) * mm_per_px
    if length_mm < _MIN_LENGTH_MM or width_mm > _MAX_WIDTH_MM or length_mm < _MIN_ELONGATION * width_mm:
        return None
    return centre, axis, length_mm, width_mm, (lo, hi)


def _value_at(image: np.ndarray, point: np.ndarray) -> float:
    x, y = (int(round(v)) for v in point)
    y = min(max(y, 0), image.shape[0] - 1)
    x = min(max(x, 0), image.shape[1] - 1)
    return float(image[y, x])
