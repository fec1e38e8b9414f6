"""Frame results made by hand for the writers' tests."""

import math

import pytest

from vpimage.alerts import AlertLevel
from vpimage.engine._result import FrameResult


def make_result(frame, **changes):
    """A FrameResult at 10 fps with plain values; ``changes`` override fields."""
    values = dict(
        frame=frame,
        time_s=frame / 10,
        cement_area_px=100 * frame,
        cement_area_mm2=9.0 * frame,
        front_to_wall_px=40.0 - frame,
        front_to_wall_mm=(40.0 - frame) * 0.3,
        depth_fraction=0.1 * frame,
        front_speed_mm_s=math.nan,
        time_to_wall_s=math.nan,
        leak_area_mm2=0.0,
        leak_classes=(),
        alert=AlertLevel.OK,
        reason="",
    )
    values.update(changes)
    return FrameResult(**values)


@pytest.fixture
def results():
    """Five frames: no cement, growing cement, a warn with a comma in its reason, a stop with two leaks."""
    return [
        make_result(0, cement_area_mm2=0.0, front_to_wall_px=math.nan, front_to_wall_mm=math.nan, depth_fraction=math.nan),
        make_result(1),
        make_result(2, front_speed_mm_s=1.5, time_to_wall_s=7.6),
        make_result(3, alert=AlertLevel.WARN, reason="front 4.0 mm from the wall, \"near\""),
        make_result(
            4, alert=AlertLevel.STOP, reason="leak: posterior; leak: venous", leak_classes=("posterior", "venous"),
            leak_area_mm2=2.5,
        ),
    ]
