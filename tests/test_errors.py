"""Bad arguments to the library are vpimage errors, and ValueErrors as Python's own are."""

import math

import numpy as np
import pytest

from vpimage.alerts import AlertStateMachine, AlertThresholds
from vpimage.config import RunConfig, SegmentationConfig
from vpimage.engine import Engine
from vpimage.errors import ArgumentError, VpimageError
from vpimage.measures import Corners, front_to_wall_px

RECT = Corners((10.0, 10.0), (50.0, 10.0), (50.0, 40.0), (10.0, 40.0))


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: Engine(RunConfig.defaults(), rows=64, columns=64, mm_per_px=-1.0), "`mm_per_px` must be None"),
        (lambda: Engine(RunConfig.defaults(), rows=64, columns=64, mm_per_px=0.3,
                        corners=RECT.translated(500, 0)), "off the 64 x 64"),
        (lambda: AlertStateMachine(AlertThresholds()).update(math.nan, "stop", ""), "finite"),
        (lambda: AlertThresholds(warn_mm=1.0, stop_mm=2.0), "`warn_mm` \\(1.0\\) must be >= `stop_mm`"),
        (lambda: SegmentationConfig(smooth_px=1e9), "`smooth_px` must be a finite number in \\[0, 20\\]"),
        (lambda: Corners.from_dict({**RECT.to_dict(), "anterior_superior": "31"}), "must be a pair"),
        (lambda: front_to_wall_px(np.zeros((4, 4, 4), bool), RECT), "mask"),
    ],
)
def test_a_bad_argument_is_a_vpimage_error_and_a_value_error(call, words):
    # The command line turns a VpimageError into one line and exit status 3: an argument
    # error that escaped as a bare ValueError was a traceback.
    with pytest.raises(ArgumentError, match=words) as info:
        call()
    assert isinstance(info.value, VpimageError) and isinstance(info.value, ValueError)
