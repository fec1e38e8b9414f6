"""One frame's measures and alert, from the accumulated cement and the body's corners."""

from __future__ import annotations

import logging
import math

import numpy as np

from vpimage import measures
from vpimage.alerts import AlertLevel, frame_level
from vpimage.config import RunConfig
from vpimage.engine._region import Box, RegionOfInterest, widened
from vpimage.engine._result import EngineFrame, FrameResult
from vpimage.engine._state import EngineState
from vpimage.kernels import get_backend

__all__ = ["Measurer"]

logger = logging.getLogger(__name__)

_HOST = get_backend("numpy")  # (the mask is measured, and moved to the frame's coordinates, on the host)


class Measurer:
    """The measures of CONTRACT.md for each frame of one study, and its alert.

    Parameters
    ----------
    config : RunConfig
        ``config.leaks`` (LeakRules), ``config.alerts`` (AlertThresholds) and
        ``config.reliability`` (how far a front may run on unseen).
    roi : RegionOfInterest
        The box of the frame cement is looked for in.
    view : {"lateral", "oblique", "ap"}
        The AP view has no wall distance (front_to_wall and depth are NaN).
    mm_per_px : float or None
        Pixel size at the isocentre, mm; None when uncalibrated (the measures in mm are NaN).
    px_per_mm : float
        The pixel size the rules sized in mm are applied at, 1/mm (the engine's; set without a
        calibration too).
    """

    def __init__(
        self, config: RunConfig, roi: RegionOfInterest, *, view: str, mm_per_px: float | None, px_per_mm: float
    ):
        self.config, self.roi, self.view = config, roi, view
        self.mm_per_px, self._px_per_mm = mm_per_px, px_per_mm

    def measure(
        self, state: EngineState, time_s: float, index: int, shift: np.ndarray, problem: str, caveat: str
    ) -> EngineFrame:
        """Frame ``index`` at ``time_s`` (s): the accumulated cement (``state.accumulated``, read to
        the host: the frame's one device -> host copy) measured against ``state.corners``, its
        alert (``problem``: why the frame cannot be trusted, '' when it can; ``caveat``: why every
        frame of the study may understate the danger, see :func:`vpimage.alerts.frame_level`)
        through the state's alert state machine, and the mask and corners moved to the frame's
        image coordinates by its ``shift`` ``(dy, dx)`` px."""
        st = state
        mask = st.to_host(st.accumulated)
        scale = self.mm_per_px if self.mm_per_px is not None else math.nan
        where = self.roi.cement_box(mask)
        (top, bottom), (left, right) = where
        area_px = st.cement_area_px = int(mask[top:bottom, left:right].sum())
        front_px, depth, leaks, stray_px, hidden_px = self._shape_measures(st, mask, where, area_px)
        front_mm = front_px * scale
        speed = st.speed.update(time_s, front_mm)
        level, reason = frame_level(
            front_to_wall_mm=front_mm,
            depth_fraction=depth,
            leak_classes=tuple(leaks),
            reliable=not problem,
            unreliable_reason=problem,
            thresholds=self.config.alerts,
            hidden_front_to_wall_mm=hidden_px * scale,
            stray_cement_mm2=stray_px * scale**2,
            caveat=caveat,
        )
        level, reason = st.alerts.update(time_s, level, reason)
        result = FrameResult(
            frame=index,
            time_s=time_s,
            cement_area_px=area_px,
            cement_area_mm2=area_px * scale**2,
            front_to_wall_px=front_px,
            front_to_wall_mm=front_mm,
            depth_fraction=depth,
            front_speed_mm_s=speed,
            time_to_wall_s=measures.time_to_wall_s(front_mm, speed),
            leak_area_mm2=sum(leaks.values()) * scale**2,
            leak_classes=tuple(leaks),
            alert=AlertLevel(level),
            reason=reason,
        )
        if level is AlertLevel.UNRELIABLE:
            logger.debug("frame %d unreliable: %s", index, reason)
        dy, dx = float(shift[0]), float(shift[1])
        # In image coordinates: only the cement's box and a halo as wide as the shift move.
        image_mask = np.zeros_like(mask)
        box, _ = widened(where, int(math.ceil(max(abs(dy), abs(dx)))) + 1, mask.shape)
        image_mask[box] = _HOST.shift_images(mask[box][None], np.array([[dy, dx]]))[0]
        corners = st.corners.translated(dx, dy) if st.corners is not None else None
        return EngineFrame(result=result, cement_mask=image_mask, corners=corners, shift_px=(dy, dx))

    def _shape_measures(
        self, state: EngineState, mask: np.ndarray, box: Box, area_px: int
    ) -> tuple[float, float, dict[str, float], int, float]:
        """Front to wall (px), depth fraction, leak areas (px per class), stray cement (px
        beyond the body's outline that no leak counts) and hidden front to wall (px, see
        :meth:`_hidden_front_px`) of the whole-frame host ``mask``, whose cement
        (``area_px`` pixels) lies in the bounding box ``box`` (see :meth:`RegionOfInterest.cement_box`).

        The accumulation is monotone: while the cement's area and the corners stay, the
        mask stays, and so do its measures (taken again only when either changed).
        """
        st = state
        if st.shape_measures is not None and st.shape_measures[:2] == (area_px, st.corners):
            return st.shape_measures[2:]
        front_px = depth = hidden_px = math.nan
        leaks: dict[str, float] = {}
        stray_px = 0
        if st.corners is not None:
            # The measures see the cement's bounding box and the corners moved with it:
            # the same distances, for work that follows the cement, not the frame.
            (top, bottom), (left, right) = box
            cement = mask[top:bottom, left:right]
            corners = st.corners.translated(-left, -top)
            if self.view != "ap":
                front_px, depth = measures.front_and_depth(cement, corners)
                hidden_px = self._hidden_front_px(st, mask, box, front_px)
            leak_args = {"mm_per_px": 1.0 / self._px_per_mm, "rules": self.config.leaks}
            outside_px = measures.cement_outside_body_px(cement, corners, **leak_args)
            leaks = measures.classify_leaks(cement, corners, **leak_args) if outside_px else {}
            stray_px = outside_px - round(sum(leaks.values()))  # (beyond the outline, in no leak)
        st.shape_measures = (area_px, st.corners, front_px, depth, leaks, stray_px, hidden_px)
        return front_px, depth, leaks, stray_px, hidden_px

    def _hidden_front_px(self, state: EngineState, mask: np.ndarray, box: Box, front_px: float) -> float:
        """Signed distance to the wall of cement that could run on unseen into blind pixels, px.

        Taken only when it matters: while the front seen is beyond the stop distance by
        less than the reach (unseen cement within the reach is no nearer than the front
        less the reach); NaN otherwise, and before the baseline.
        """
        st, stop_mm = state, self.config.alerts.stop_mm
        reach_px = self.config.reliability.hidden_front_reach_mm * self._px_per_mm
        stop_px = stop_mm * self._px_per_mm
        if st.maps is None or not stop_px < front_px <= stop_px + reach_px:
            return math.nan
        around, _ = widened(box, int(math.ceil(reach_px)) + 1, mask.shape)
        corners = st.corners.translated(-around[1].start, -around[0].start)
        return measures.hidden_front_to_wall_px(mask[around], st.maps.blind[around], corners, reach_px=reach_px)
