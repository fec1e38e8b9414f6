"""The per-frame results of the analysis engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpimage.alerts import AlertLevel
from vpimage.measures import Corners

__all__ = ["EngineFrame", "FrameResult"]


@dataclass(frozen=True)
class FrameResult:
    """Measures and alert of one frame, in the order of CONTRACT.md's ``frames.csv``.

    Distances are NaN when they cannot be measured (no cement in the body band, AP view,
    no calibration for the ``_mm`` fields); ``time_to_wall_s`` is NaN when the front is
    not approaching the wall.
    """

    frame: int  # 0-based index in the study
    time_s: float  # seconds from the first frame
    cement_area_px: int
    cement_area_mm2: float
    front_to_wall_px: float  # signed, positive on the body's side of the posterior wall
    front_to_wall_mm: float  # mm at the isocentre
    depth_fraction: float  # 0 on the anterior wall, 1 on the posterior wall
    front_speed_mm_s: float  # positive toward the wall
    time_to_wall_s: float
    leak_area_mm2: float
    leak_classes: tuple[str, ...]
    alert: AlertLevel
    reason: str  # why this level; empty for ok


@dataclass(frozen=True)
class EngineFrame:
    """What the engine gives for one frame.

    Attributes
    ----------
    result : FrameResult
        The measures and the alert of the frame.
    cement_mask : ndarray of bool, shape [rows, cols]
        Accumulated cement in this frame's image coordinates.
    corners : Corners or None
        The vertebral body followed to this frame's image coordinates, px.
    shift_px : tuple of float
        ``(dy, dx)`` of this frame against the reference (first) frame, px.
    """

    result: FrameResult
    cement_mask: np.ndarray
    corners: Corners | None
    shift_px: tuple[float, float]
