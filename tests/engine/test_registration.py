"""The study's registration on its own: a known translation of a phantom frame is measured, a
magnification is told from it, and the set-up falls back to the frame's own pixels where the
bone holds no whole block.

The engine's runs test it against the phantom's true motion (test_motion.py), with collimator
blades (test_collimation.py) and magnified runs (test_magnification.py); here the truth is a
frame moved or magnified by a known amount.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.config import RunConfig
from vpimage.engine._registration import Registration
from vpimage.kernels import get_backend
from vpimage.synth import SynthOptions, simulate

from test_accuracy import as_ingested

HOST = get_backend("numpy")
FACTOR = 2


@pytest.fixture(scope="module")
def first_frame():
    """The attenuation of a 256 px phantom frame ``[rows, cols]`` and the bone it is registered on
    (its field, away from the edge)."""
    sim = simulate("no_leak", seed=2, options=SynthOptions(size_px=256, frames=6))
    attenuation = HOST.attenuation(as_ingested(sim.run)[0], white_level=2**sim.run.bits_stored - 1)
    weight = ndi.binary_erosion(sim.run.field.mask(*attenuation.shape), iterations=24)
    return attenuation.astype(np.float32), weight


def registration(weight: np.ndarray, fill: float = 0.0) -> Registration:
    return Registration(
        HOST, HOST, weight=weight, inner_field=weight, factor=FACTOR, px_per_mm=1 / 0.3,
        reliability=RunConfig.defaults().reliability, fill=fill, to_device=np.asarray,
    )


def on_grid(images: np.ndarray) -> np.ndarray:
    return HOST.block_mean(images, factor=FACTOR)


@pytest.mark.parametrize("shift", [(1.5, -2.25), (-4.0, 0.6), (0.0, 0.0)])
def test_a_frame_moved_by_a_known_translation_reads_it(first_frame, shift):
    attenuation, weight = first_frame
    reg = registration(weight)
    moved = HOST.shift_images(attenuation[None], np.array([shift]), order=3)
    shifts, scores, blades = reg.register(on_grid(moved), np.array([], int), on_grid(attenuation), np.zeros(2))
    # Within a third of the residual misregistration the segmentation absorbs (registration_error_px,
    # 0.3 px); measured on 2 x 2 blocks: 0.06 px at most here, 0.08 at (2.3, -0.7) px (the moved frame
    # is itself interpolated).
    np.testing.assert_allclose(shifts[0], shift, atol=0.1)
    assert scores[0] > 0.99 and blades == {}


def test_a_frame_magnified_by_2_per_cent_is_told_from_a_moved_one(first_frame):
    attenuation, weight = first_frame
    reg = registration(weight)
    centre = (np.array(attenuation.shape) - 1) / 2
    magnified = ndi.affine_transform(attenuation, np.eye(2) / 1.02, offset=centre - centre / 1.02, order=3, mode="nearest")
    moved = HOST.shift_images(attenuation[None], np.array([[0.7, -1.3]]), order=3)[0]
    coarse, reference = on_grid(np.stack([magnified, moved])), on_grid(attenuation)
    shifts, scores, _ = reg.register(coarse, np.array([], int), reference, np.zeros(2))
    assert scores[0] < scores[1]  # (a translation explains the magnified frame less well)
    checked = np.ones(2, bool)
    np.testing.assert_array_equal(reg.magnified(coarse, reference, shifts, scores, checked, {}), [True, False])
    # A frame not asked is not fitted.
    np.testing.assert_array_equal(reg.magnified(coarse, reference, shifts, scores, ~checked, {}), [False, False])


def test_a_frame_is_asked_for_a_magnification_when_its_score_fell_but_not_to_noise():
    reg = registration(np.ones((32, 32), bool))
    minimum = RunConfig.defaults().reliability.min_registration_score
    scores = np.array([0.989, 0.987, minimum + 0.01, minimum - 0.01])
    # A fall of more than 0.002 below the frames' before; under the least score the translation
    # explains nothing (motion_not_tracked) and an affine fit would read noise.
    np.testing.assert_array_equal(reg.score_fell(scores, 0.99), [False, True, True, False])
    assert not reg.score_fell(scores, math.nan).any()  # (no frames before)


def test_bone_without_a_whole_block_is_registered_on_its_own_pixels():
    weight = np.zeros((32, 32), bool)
    weight[::2, ::2] = True  # no 2 x 2 block wholly in it
    reg = registration(weight)
    assert reg.factor == 1
    np.testing.assert_array_equal(reg.host_mask, weight)
    assert reg.sizes == {"taper_px": 16.0, "smooth_px": 1.5}


def test_the_reference_is_seen_where_a_moved_frame_sees_it_and_at_the_fill_off_the_field():
    weight = np.zeros((40, 40), bool)
    weight[4:36, 4:36] = True
    reg = registration(weight, fill=-1.0)
    reference = np.arange(20 * 20, dtype=np.float32).reshape(20, 20)
    seen = reg.seen(reference, np.array([2.0, -4.0]), HOST)  # px: one block down, two to the left
    field = reg.collimation.field
    assert field[10, 10] and not field[0, 0]
    assert seen[11, 8] == reference[10, 10]  # (the block the frame now has there)
    assert seen[1, 0] == -1.0  # (seen from off the field: the fill)


def test_blocks_of_the_grid_cover_their_pixels_and_a_block_around():
    # An 11 x 11 frame on 2 x 2 blocks: a 5 x 5 grid, the frame's last row and column past it.
    reg = registration(np.ones((11, 11), bool))
    blocks = np.zeros((5, 5), bool)
    blocks[1, 1] = blocks[4, 4] = True
    # By hand: blocks (1, 1) and (4, 4) are pixels 2-3 and 8-9 of rows and columns; a block more
    # (2 px of the cross dilation) takes every pixel within 2 steps of a covered one.
    covered = np.zeros((11, 11), bool)
    covered[2:4, 2:4] = covered[8:10, 8:10] = True
    rows, cols = np.indices((11, 11))
    expected = np.zeros((11, 11), bool)
    for r, c in zip(*np.nonzero(covered)):
        expected |= np.abs(rows - r) + np.abs(cols - c) <= 2
    pixels = reg.pixels_of(blocks)
    np.testing.assert_array_equal(pixels, expected)
    assert pixels[10, 10] and pixels[10, 9]  # (past the grid, beside a covered block)
    assert not reg.pixels_of(np.zeros((5, 5), bool)).any()
