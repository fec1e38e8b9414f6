"""Where the engine works: the region of interest, its halo for a shift, and boxes widened within
the frame (vpimage/engine/_region.py), against boxes worked out by hand and against the whole
frame moved and then cropped."""

from __future__ import annotations

import numpy as np
import pytest

from vpimage.engine._region import RegionOfInterest, bounding_box, widened
from vpimage.kernels import get_backend

HOST = get_backend("numpy")


def test_the_bounding_box_of_a_mask_ends_past_its_last_pixels():
    mask = np.zeros((12, 10), bool)
    mask[2, 3] = mask[5, 7] = True
    assert bounding_box(mask) == ((2, 6), (3, 8))
    assert bounding_box(np.zeros((12, 10), bool)) is None


@pytest.mark.parametrize(
    ("box", "reach", "shape", "around", "inner"),
    [
        # Room on every side: 5 px more each way, the box 5 px into it.
        (((10, 20), (30, 40)), 5, (100, 100), ((5, 25), (25, 45)), ((5, 15), (5, 15))),
        # At the frame's top-left and bottom-right: the widened box stops at the frame.
        (((2, 20), (0, 10)), 5, (22, 12), ((0, 22), (0, 12)), ((2, 20), (0, 10))),
        (((0, 4), (6, 9)), 0, (10, 10), ((0, 4), (6, 9)), ((0, 4), (0, 3))),
    ],
)
def test_a_box_widened_within_the_frame(box, reach, shape, around, inner):
    frame_slices, box_slices = widened(box, reach, shape)
    assert [(s.start, s.stop) for s in frame_slices] == list(around)
    assert [(s.start, s.stop) for s in box_slices] == list(inner)
    image = np.arange(shape[0] * shape[1]).reshape(shape)
    (top, bottom), (left, right) = box
    np.testing.assert_array_equal(image[frame_slices][box_slices], image[top:bottom, left:right])


def test_the_region_around_a_search_mask_crops_views_of_the_frame():
    search = np.zeros((40, 50), bool)
    search[8:20, 11:30] = True
    roi = RegionOfInterest.around(search)
    assert roi.box == ((8, 20), (11, 30)) and roi.shape == (12, 19)
    image = np.zeros((40, 50), np.float32)
    roi.crop(image)[...] = 1.0  # (the engine writes the state through its crops)
    assert image.sum() == 12 * 19 and image[8:20, 11:30].all()
    # An empty search: the whole frame.
    assert RegionOfInterest.around(np.zeros((40, 50), bool)).box == ((0, 40), (0, 50))


@pytest.mark.parametrize("shifts", [[[2.6, -1.3]], [[0.0, 0.0], [-7.2, 4.9]], [[0.4, 30.0]]])
def test_moving_the_halo_back_is_moving_the_whole_frame_then_cropping(shifts):
    shifts = np.array(shifts)
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(len(shifts), 64, 80)).astype(np.float32)
    roi = RegionOfInterest(((20, 44), (18, 60)), (64, 80))
    whole = HOST.shift_images(frames, -shifts, order=3)
    around, inner = roi.halo(shifts)
    moved = HOST.shift_images(frames[(slice(None),) + around], -shifts, order=3)[(slice(None),) + inner]
    expected = np.stack([roi.crop(frame) for frame in whole])
    np.testing.assert_allclose(moved, expected, rtol=0, atol=1e-5)


def test_the_cement_box_is_in_frame_coordinates_and_sees_only_the_region():
    roi = RegionOfInterest(((10, 30), (5, 25)), (40, 40))
    mask = np.zeros((40, 40), bool)
    assert roi.cement_box(mask) == ((10, 10), (5, 5))  # (none: empty, at the region's corner)
    mask[12:15, 20:23] = True
    mask[35, 35] = True  # (outside the region: not the engine's cement)
    assert roi.cement_box(mask) == ((12, 15), (20, 23))
