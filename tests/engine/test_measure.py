"""One frame's measures and alert from the accumulated cement (``Measurer``), on hand-drawn
masks against an upright lateral body whose distances are counted by hand.

The body: anterior wall x = 40 px, posterior wall x = 100, superior endplate y = 30, inferior
y = 80, at 0.2 mm/px. The cement in the body fills the pixels whose centres lie at x 50-59:
its front is 100 - 59 = 41 px (8.2 mm) from the posterior wall, beyond the warn distance
(5 mm), its depth fraction (59 - 40) / 60.
"""

from __future__ import annotations

import numpy as np
import pytest

from vpimage.alerts import LEAK_UNCERTAIN, AlertLevel, AlertStateMachine
from vpimage.config import RunConfig
from vpimage.engine._measure import Measurer
from vpimage.engine._region import RegionOfInterest
from vpimage.engine._state import EngineState
from vpimage.measures import Corners, FrontSpeedEstimator

SHAPE = (120, 160)
BODY = Corners((40, 30), (100, 30), (100, 80), (40, 80))
MM_PER_PX = 0.2


def measured(mask: np.ndarray, config: RunConfig):
    """The FrameResult of the first frame whose accumulated cement is ``mask``."""
    state = EngineState(
        rows=SHAPE[0], columns=SHAPE[1], speed=FrontSpeedEstimator(window_s=1.0),
        alerts=AlertStateMachine(config.alerts), corners=BODY, corners_anchor_frame=None,
    )
    state.accumulated = mask
    roi = RegionOfInterest(((0, SHAPE[0]), (0, SHAPE[1])), SHAPE)
    measurer = Measurer(config, roi, view="lateral", mm_per_px=MM_PER_PX, px_per_mm=1 / MM_PER_PX)
    return measurer.measure(state, 0.0, 0, np.zeros(2), "", "").result


def cement(*, stray: bool, disc_leak: bool) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[50:60, 50:60] = True  # in the body
    if stray:
        mask[54:56, 35:37] = True  # 2 x 2 px (0.16 mm2, under leaks.min_area_mm2) in front of the anterior wall
    if disc_leak:
        mask[22:26, 55:95] = True  # 40 x 4 px (6.4 mm2) above the superior endplate, between the walls
    return mask


def test_cement_in_the_body_alone_is_measured_by_hand_and_ok():
    result = measured(cement(stray=False, disc_leak=False), RunConfig.defaults())
    assert result.front_to_wall_px == pytest.approx(41.0)
    assert result.front_to_wall_mm == pytest.approx(8.2)
    assert result.depth_fraction == pytest.approx(19 / 60)
    assert (result.alert, result.leak_classes) == (AlertLevel.OK, ())


def test_stray_cement_in_front_of_the_body_is_leak_uncertain():
    result = measured(cement(stray=True, disc_leak=False), RunConfig.defaults())
    assert result.alert is AlertLevel.UNRELIABLE
    assert result.reason.startswith(f"{LEAK_UNCERTAIN}: 0.16 mm2")  # 4 px of 0.04 mm2


@pytest.mark.parametrize(("disc_level", "alert"), [("ok", AlertLevel.UNRELIABLE), ("warn", AlertLevel.WARN)])
def test_a_leak_that_does_not_stop_leaves_the_doubt_of_stray_cement_elsewhere(disc_level, alert):
    """A disc leak a site set to ``ok`` or ``warn``, and stray cement in front of the body, where
    a leak stops: the frame cannot be called ``ok``, and its warn says why it may be worse. (The
    stray cement was forgotten whenever any leak was found: ``ok``, and a warn without the doubt.)"""
    config = RunConfig.defaults().with_overrides({"alerts.leak_levels.disc_superior": disc_level})
    result = measured(cement(stray=True, disc_leak=True), config)
    assert result.leak_classes == ("disc_superior",)
    assert result.alert is alert
    assert f"{LEAK_UNCERTAIN}: 0.16 mm2" in result.reason


def test_a_leak_that_does_not_stop_without_stray_cement_is_what_it_raises():
    config = RunConfig.defaults().with_overrides({"alerts.leak_levels.disc_superior": "ok"})
    result = measured(cement(stray=False, disc_leak=True), config)
    assert (result.alert, result.reason, result.leak_classes) == (AlertLevel.OK, "", ("disc_superior",))
