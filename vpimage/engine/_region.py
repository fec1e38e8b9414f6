"""Where in a frame the engine works: the region of interest, and boxes widened within the frame.

After registration the engine moves, segments and accumulates only the region of interest:
the bounding box of the field within ``segmentation.leak_search_margin_mm`` of the body (the
whole field without corners; README, "What makes the numpy engine fast"). Moving it back by a
shift reads a halo around it as wide as the shift; the measures read the cement's bounding box,
and a halo around that. A box is ``((top, bottom), (left, right))``, px, ends excluded, in the
frame's ``[rows, cols]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Box", "RegionOfInterest", "bounding_box", "widened"]

Box = tuple[tuple[int, int], tuple[int, int]]

# How far past the largest shift (rounded up) moving a box back reads, px: the bicubic's outer tap
# lies 1 px past it (tests/engine/test_region.py), and 2 more are to spare.
_INTERPOLATION_REACH_PX = 3


def bounding_box(mask: np.ndarray) -> Box | None:
    """The bounding box of a host ``mask`` ``[rows, cols]`` (bool), None when it holds no pixel."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


def widened(box: Box, reach: int, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """``box`` widened by ``reach`` px within a frame of ``shape`` ``(rows, cols)``, and where
    ``box`` lies in it: slices of the frame, slices of the widened box."""
    (top, bottom), (left, right) = box
    r0, c0 = max(top - reach, 0), max(left - reach, 0)
    around = (slice(r0, min(bottom + reach, shape[0])), slice(c0, min(right + reach, shape[1])))
    return around, (slice(top - r0, bottom - r0), slice(left - c0, right - c0))


@dataclass(frozen=True)
class RegionOfInterest:
    """A box of a frame that the engine's per-frame images cover.

    Attributes
    ----------
    box : Box
        Where it lies in the frame, px.
    frame_shape : tuple of int
        The frame's ``(rows, cols)``.
    """

    box: Box
    frame_shape: tuple[int, int]

    @classmethod
    def around(cls, search: np.ndarray) -> RegionOfInterest:
        """The bounding box of the host ``search`` mask ``[rows, cols]``; the whole frame when it
        holds no pixel."""
        rows, cols = search.shape
        return cls(bounding_box(search) or ((0, rows), (0, cols)), (rows, cols))

    @property
    def shape(self) -> tuple[int, int]:
        """``(roi_rows, roi_cols)``, px."""
        (top, bottom), (left, right) = self.box
        return bottom - top, right - left

    def crop(self, image):
        """The region of a ``[rows, cols]`` image (a view)."""
        (top, bottom), (left, right) = self.box
        return image[top:bottom, left:right]

    def halo(self, shifts: np.ndarray) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """The region widened by the largest of the host ``shifts`` ``[B, 2]`` (px) and the
        interpolation's reach: all that moving it back by them reads (see :func:`widened`)."""
        reach = int(math.ceil(np.abs(shifts).max(initial=0.0))) + _INTERPOLATION_REACH_PX
        return widened(self.box, reach, self.frame_shape)

    def cement_box(self, mask: np.ndarray) -> Box:
        """The bounding box (frame coordinates) of the pixels of a whole-frame host ``mask`` in
        the region; empty at the region's top-left corner when there is none."""
        (top, _), (left, _) = self.box
        found = bounding_box(self.crop(mask))
        if found is None:
            return (top, top), (left, left)
        (r0, r1), (c0, c1) = found
        return (top + r0, top + r1), (left + c0, left + c1)
