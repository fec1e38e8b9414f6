"""Which side of the body the needle enters through: a check on corners drawn by hand."""

from __future__ import annotations

import numpy as np

from vpimage.anatomy._types import NeedleTrack
from vpimage.measures import Corners

__all__ = ["needle_entry_side"]


def needle_entry_side(corners: Corners, needle: NeedleTrack) -> str | None:
    """The side of the vertebral body the needle's shaft crosses on its way in.

    Followed from its tip toward the hub, the shaft leaves the body's quadrilateral through
    one of the four bounding lines; that line is the side it entered through. Seen
    laterally, a transpedicular needle enters through the posterior wall: a shaft that
    enters through the side the corners call ``anterior`` says that their anterior and
    posterior corners are swapped (a mirrored drawing), or that the approach is not
    transpedicular.

    Parameters
    ----------
    corners : Corners
        The body, px, in the image the needle was found in.
    needle : NeedleTrack
        Its tip (px) and unit direction toward the hub.

    Returns
    -------
    str or None
        ``"posterior"``, ``"anterior"``, ``"superior"`` or ``"inferior"``; None when the
        tip is not inside the body (the needle has not reached it, or is not the one
        that treats it).
    """
    tip = np.asarray(needle.tip_px, dtype=np.float64)
    toward_hub = np.asarray(needle.direction, dtype=np.float64)
    distance_to_exit = {}
    for side, (normal, offset) in corners.bounding_lines.items():
        inside_by_px = float(normal @ tip + offset)
        if inside_by_px <= 0:
            return None
        closing = -float(normal @ toward_hub)  # px of this side's distance lost per px of shaft
        if closing > 0:
            distance_to_exit[side] = inside_by_px / closing
    return min(distance_to_exit, key=distance_to_exit.get)
