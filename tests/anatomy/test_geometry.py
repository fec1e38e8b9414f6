"""The anatomy's small geometric helpers against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.anatomy import corner_errors_px, wall_angle_error_deg
from vpimage.anatomy._frame import BodyFrame, dominant_orientation, gradients
from vpimage.measures import Corners

SQUARE = Corners((10, 10), (50, 10), (50, 40), (10, 40))


def test_corner_errors_and_wall_angle_of_hand_moved_corners():
    moved = Corners((13, 14), (50, 10), (50, 40), (10, 40))  # one corner 5 px off (3-4-5)
    np.testing.assert_allclose(corner_errors_px(moved, SQUARE), [5, 0, 0, 0])
    assert wall_angle_error_deg(moved, SQUARE) == pytest.approx(0.0)
    # the posterior-inferior corner 30 px down and 30 px back: the wall turns by 45 degrees
    turned = Corners((10, 10), (50, 10), (80, 40), (10, 40))
    assert wall_angle_error_deg(turned, SQUARE) == pytest.approx(45.0)


@pytest.mark.parametrize("degrees", [0.0, 12.0, -20.0, 25.0])
def test_dominant_orientation_of_a_turned_rectangle(degrees):
    image = np.zeros((200, 200), np.float32)
    image[70:130, 50:150] = 1.0
    turned = ndi.rotate(image, degrees, reshape=False, order=1)  # counter-clockwise as displayed
    gx, gy = gradients(turned, mm_per_px=0.3)  # smoothed over 2 px, as at a fluoroscope's 0.3 mm/px
    angle = np.degrees(dominant_orientation(gx, gy, np.ones_like(turned)))
    # Image rows grow downward, so a counter-clockwise turn on screen is -degrees in (x, y).
    assert ((angle + degrees + 45) % 90 - 45) == pytest.approx(0.0, abs=0.5)


def test_body_frame_axes_follow_the_needle_and_map_mm_to_px():
    # Edges at 10 degrees; the needle points to the image right and a little up.
    frame = BodyFrame.around((100.0, 80.0), np.deg2rad(10.0), (0.95, -0.3), mm_per_px=0.5)
    cos, sin = np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))
    np.testing.assert_allclose(frame.a, [cos, sin])
    np.testing.assert_allclose(frame.c, [-sin, cos])  # a turned a quarter, pointing down the image
    # 2 mm along a and 1 mm along c at 0.5 mm/px: 4 px and 2 px from the origin.
    expected = np.array([100.0, 80.0]) + 4.0 * np.array([cos, sin]) + 2.0 * np.array([-sin, cos])
    np.testing.assert_allclose(frame.to_px(2.0, 1.0), expected)
    np.testing.assert_allclose(frame.to_px([0.0, 2.0], [0.0, 0.0]), [[100.0, 80.0], [100.0 + 4 * cos, 80.0 + 4 * sin]])
