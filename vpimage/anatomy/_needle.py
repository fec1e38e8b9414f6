"""The trocars: long straight, very dense, thin objects of a pre-injection image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import hough_line, hough_line_peaks

from vpimage.anatomy._types import NeedleTrack
from vpimage.kernels import get_backend

__all__ = ["find_needle", "find_needles"]

# A steel shaft adds this much attenuation over its local background along its core; bone
# edges and trabecular texture stay well below it.
NEEDLE_MIN_EXCESS = 2.5
# Trocars are 8-15 gauge: at most this wide, mm.
_MAX_WIDTH_MM = 4.0
# The local background is a grey opening this wide, mm: wider than a trocar, narrower than
# a vertebral body's texture.
_BACKGROUND_MM = 5.0
# What is shorter than this is not a shaft.
_MIN_LENGTH_MM = 15.0
# A shaft's steel may dip under the threshold in places: gaps up to this are bridged, mm.
_MAX_GAP_MM = 4.0
# At most this many shafts (a bipedicular approach has two), looked for as this many lines.
_MAX_NEEDLES = 3
_ANGLES = np.linspace(-np.pi / 2, np.pi / 2, 360, endpoint=False)


def find_needle(image: np.ndarray, *, mm_per_px: float, fov_mask: np.ndarray,
                min_excess: float = NEEDLE_MIN_EXCESS) -> NeedleTrack | None:
    """The longest needle shaft of the image (see :func:`find_needles`), or None."""
    needles = find_needles(image, mm_per_px=mm_per_px, fov_mask=fov_mask, min_excess=min_excess)
    return needles[0] if needles else None


def find_needles(image: np.ndarray, *, mm_per_px: float, fov_mask: np.ndarray,
                 min_excess: float = NEEDLE_MIN_EXCESS) -> list[NeedleTrack]:
    """Find the needle shafts: tip, direction, length of each, longest first.

    Steel is what stands out of its local background by ``min_excess`` (a morphological
    top-hat wider than any trocar). Shafts are the straight lines that most steel pixels
    lie on (Hough transform): on each line, the pixels within half a trocar's width make
    the longest run without a gap over :data:`_MAX_GAP_MM`; a run at least
    :data:`_MIN_LENGTH_MM` long is a shaft. Its axis is the principal axis of its pixels,
    its tip the end farther from the edge of the field or of the image, whichever is nearer
    (the shaft enters from outside).

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
    list of NeedleTrack
        Empty when no long thin dense object is seen.
    """
    background_px = 2 * int(np.ceil(_BACKGROUND_MM / 2 / mm_per_px)) + 1
    inner = ndi.binary_erosion(fov_mask, iterations=3)
    steel = get_backend("numpy").needle_mask(image, min_excess=min_excess, background_px=background_px) & inner
    min_length_px = _MIN_LENGTH_MM / mm_per_px
    if steel.sum() < min_length_px:
        return []
    ys, xs = np.nonzero(steel)
    points = np.column_stack([xs, ys]).astype(np.float64)
    votes, angles, distances = hough_line(steel, theta=_ANGLES)
    half_width_px = 0.5 * _MAX_WIDTH_MM / mm_per_px
    peaks = hough_line_peaks(votes, angles, distances, num_peaks=_MAX_NEEDLES, threshold=0.5 * min_length_px,
                             min_distance=max(3, int(2 * half_width_px)), min_angle=5)
    # Depth into the field: to its nearest unexposed pixel or the image's edge, whichever is
    # nearer (the pad is the unexposed beyond the frame; a field without a border has no other).
    distance_to_edge = ndi.distance_transform_edt(np.pad(fov_mask, 1))[1:-1, 1:-1]
    taken = np.zeros(len(points), bool)
    needles = []
    for _, angle, distance in zip(*peaks):
        normal = np.array([np.cos(angle), np.sin(angle)])
        on_line = ~taken & (np.abs(points @ normal - distance) <= half_width_px)
        run = _longest_run(points, on_line, np.array([-normal[1], normal[0]]), _MAX_GAP_MM / mm_per_px)
        if run.sum() < 3:
            continue
        needle = _track(points[run], mm_per_px, distance_to_edge)
        if needle.length_mm >= _MIN_LENGTH_MM and needle.width_mm <= _MAX_WIDTH_MM:
            taken |= run
            needles.append(needle)
    return sorted(needles, key=lambda n: -n.length_mm)


def _longest_run(points: np.ndarray, selected: np.ndarray, axis: np.ndarray, max_gap_px: float) -> np.ndarray:
    """Mask of the ``selected`` points in the longest stretch along ``axis`` without a gap
    over ``max_gap_px``."""
    index = np.flatnonzero(selected)
    if index.size == 0:
        return selected
    along = points[index] @ axis
    order = np.argsort(along)
    breaks = np.flatnonzero(np.diff(along[order]) > max_gap_px)
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks + 1, [index.size]])
    lengths = along[order][stops - 1] - along[order][starts]
    best = int(np.argmax(lengths))
    run = np.zeros_like(selected)
    run[index[order[starts[best]:stops[best]]]] = True
    return run


def _track(points: np.ndarray, mm_per_px: float, distance_to_edge: np.ndarray) -> NeedleTrack:
    """The shaft through ``points`` [n, 2] (x, y) px: principal axis, ends, width."""
    centre = points.mean(axis=0)
    offsets = points - centre
    _, vectors = np.linalg.eigh(offsets.T @ offsets / len(points))
    axis = vectors[:, 1]
    along = offsets @ axis
    across = offsets @ vectors[:, 0]
    ends = [centre + along.min() * axis, centre + along.max() * axis]
    depth = [_value_at(distance_to_edge, p) for p in ends]
    tip, hub = (ends[0], ends[1]) if depth[0] >= depth[1] else (ends[1], ends[0])
    direction = (hub - tip) / max(np.linalg.norm(hub - tip), 1e-12)
    return NeedleTrack(
        tip_px=(float(tip[0]), float(tip[1])),
        direction=(float(direction[0]), float(direction[1])),
        length_mm=float((along.max() - along.min() + 1.0) * mm_per_px),
        width_mm=float((np.percentile(across, 98) - np.percentile(across, 2) + 1.0) * mm_per_px),
    )


def _value_at(image: np.ndarray, point: np.ndarray) -> float:
    x, y = (int(round(v)) for v in point)
    y = min(max(y, 0), image.shape[0] - 1)
    x = min(max(x, 0), image.shape[1] - 1)
    return float(image[y, x])
