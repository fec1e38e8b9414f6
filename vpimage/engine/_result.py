"""The per-frame result of the analysis engine."""

from __future__ import annotations

from dataclasses import dataclass

from vpimage.alerts import AlertLevel

__all__ = ["FrameResult"]


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
