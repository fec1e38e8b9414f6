"""The numpy kernels against hand-computed truths."""

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.kernels import _numpy as K


def textured(shape=(128, 128), seed=0):
    """A smooth random texture (bone-like), attenuation units."""
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(size=shape), 3).astype(np.float32) * 10


def test_attenuation_is_minus_log_of_transmission():
    frames = np.array([[[1000.0, 500.0], [0.0, 4000.0]]], dtype=np.float32)
    out = K.attenuation(frames, white_level=1000.0)
    expected = [[0.0, np.log(2.0)], [np.log(1000.0), -np.log(4.0)]]  # 0 is clipped to the floor 1
    np.testing.assert_allclose(out[0], expected, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == frames.shape


def test_attenuation_of_a_log_encoded_display_is_linear_in_the_stored_value():
    # A 12-bit log display spanning 11 units: white (4095) is 0, black (0) is 11.
    frames = np.array([[4095.0, 0.0, 4095.0 / 2]], dtype=np.float32)
    out = K.attenuation(frames, white_level=4095.0, log_range=11.0)
    np.testing.assert_allclose(out, [[0.0, 11.0, 5.5]], rtol=1e-6)


def test_attenuation_rejects_bad_white_level():
    with pytest.raises(ValueError, match="white_level"):
        K.attenuation(np.ones((2, 2)), white_level=0.0)


def test_mask_field_fills_outside_only():
    frames = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    fov = np.zeros((3, 3), bool)
    fov[1, 1] = True
    out = K.mask_field(frames, fov, fill=-1.0)
    assert np.all(out[:, 1, 1] == frames[:, 1, 1])
    assert np.all(out[:, ~fov] == -1.0)
    with pytest.raises(ValueError, match="fov_mask"):
        K.mask_field(frames, np.ones((2, 2), bool))


def test_smooth_keeps_mean_and_lowers_noise():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(2, 64, 64)).astype(np.float32)
    out = K.smooth(noise, sigma_px=1.5)
    assert out.shape == noise.shape
    assert out.std() < 0.5 * noise.std()
    np.testing.assert_allclose(out.mean(), noise.mean(), atol=0.02)
    np.testing.assert_array_equal(K.smooth(noise, sigma_px=0), noise)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (2.5, -1.25), (-9.0, 14.0)])
def test_estimate_shift_recovers_a_known_translation_despite_a_static_field_edge(shift):
    base = textured((160, 160))
    moved = ndi.shift(base, shift, order=3, mode="nearest")
    # A circular field edge that does not move with the content.
    r, c = np.mgrid[:160, :160]
    fov = (r - 80) ** 2 + (c - 80) ** 2 <= 75**2
    images = np.where(fov, moved, 50.0)[None].astype(np.float32)
    reference = np.where(fov, base, 50.0).astype(np.float32)
    weight = ndi.binary_erosion(fov, iterations=30)  # off the field edge by more than the motion
    shifts, score = K.estimate_shift(images, reference, weight=weight)
    np.testing.assert_allclose(shifts[0], shift, atol=0.1)
    assert score[0] > 0.95


def test_estimate_shift_scores_unrelated_content_low():
    reference = textured((96, 96), seed=3)
    unrelated = textured((96, 96), seed=4)[None]
    _, score = K.estimate_shift(unrelated, reference, weight=np.ones((96, 96), bool))
    assert score[0] < 0.5


def test_estimate_shift_rejects_empty_weight():
    with pytest.raises(ValueError, match="weight"):
        K.estimate_shift(np.zeros((1, 8, 8)), np.zeros((8, 8)), weight=np.zeros((8, 8), bool))


def magnified(image, scales, centre, shift=(0.0, 0.0)):
    """``image`` magnified by ``scales`` (along rows, along columns) about ``centre`` (px), then
    moved by ``shift`` (px): output pixel ``p`` reads ``image`` at ``centre + (p - shift - centre) / scales``."""
    inverse = 1.0 / np.asarray(scales, float)
    offset = np.asarray(centre) - inverse * (np.asarray(centre) + np.asarray(shift))
    return ndi.affine_transform(image, inverse, offset=offset, order=3, mode="nearest").astype(np.float32)


@pytest.mark.parametrize("scales", [(1.0, 1.0), (1.02, 1.02), (0.97, 0.97), (1.0, 1.05), (1.2, 1.2)])
def test_estimate_scale_measures_a_known_magnification_that_a_translation_does_not_explain(scales):
    base = textured((160, 160))
    # Magnified about a point off the middle, and moved: the translation registers the
    # middle of the bone, the scale is left.
    image = magnified(base, scales, centre=(60.0, 95.0), shift=(1.5, -2.0))[None]
    weight = np.zeros(base.shape, bool)
    weight[25:135, 25:135] = True
    shifts, translation_score = K.estimate_shift(image, base, weight=weight)
    scales_out, score = K.estimate_scale(image, base, weight=weight, shifts=shifts)
    np.testing.assert_allclose(scales_out[0], scales, atol=0.002)
    assert score[0] > 0.999
    if scales != (1.0, 1.0):  # what the translation leaves unexplained, the affine fit explains
        assert 1 - score[0] < 0.1 * (1 - translation_score[0])


def test_estimate_scale_of_an_unrelated_image_does_not_explain_it():
    reference = textured((96, 96), seed=3)
    unrelated = textured((96, 96), seed=4)[None]
    scales, score = K.estimate_scale(unrelated, reference, weight=np.ones((96, 96), bool), shifts=np.zeros((1, 2)))
    assert score[0] < 0.6 or np.isnan(scales).all()
    with pytest.raises(ValueError, match="weight"):
        K.estimate_scale(unrelated, reference, weight=np.ones((8, 8), bool), shifts=np.zeros((1, 2)))


def test_block_mean_averages_whole_blocks_and_drops_the_rest():
    image = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)  # value = 7 * row + col
    out = K.block_mean(np.stack([image, 2 * image]), factor=2)
    # Block (i, j) holds rows 2i, 2i+1 and cols 2j, 2j+1: mean 7 * (2i + 0.5) + 2j + 0.5.
    expected = 7 * (2 * np.arange(2)[:, None] + 0.5) + 2 * np.arange(3)[None] + 0.5
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    np.testing.assert_allclose(out[1], 2 * expected, rtol=1e-6)
    np.testing.assert_array_equal(K.block_mean(image, factor=1), image)
    for factor in (0, 6, 2.0):
        with pytest.raises(ValueError, match="factor"):
            K.block_mean(image, factor=factor)


def test_shift_images_moves_content_by_the_shift():
    base = textured((64, 64))
    out = K.shift_images(base[None], np.array([[3.0, -2.0]]))
    np.testing.assert_allclose(out[0, 10:50, 10:50], base[7:47, 12:52], atol=1e-4)
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 2, 2] = True
    moved = K.shift_images(mask, np.array([[1.0, 3.0]]))
    assert moved.dtype == bool and moved[0, 3, 5] and moved.sum() == 1


# Halves, float32's neighbours of halves (rounded apart far along a 300 px axis), beyond the image.
NEAREST_SHIFTS = [0.0, 0.5, -0.5, 2.5, -3.5, 0.3, -7.8, 3.4999999, 0.5000000596, -2.5000002, 150.49999, 299.6, -1e9, np.nan]


@pytest.mark.parametrize("dy", NEAREST_SHIFTS)
def test_nearest_neighbour_shift_is_opencvs_warp(dy):
    rng = np.random.default_rng(3)
    image, mask = rng.random((300, 280)).astype(np.float32), rng.random((300, 280)) > 0.5
    for dx in NEAREST_SHIFTS:
        matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        for source, border in ((image, cv2.BORDER_REPLICATE), (mask.astype(np.uint8), cv2.BORDER_CONSTANT)):
            expected = cv2.warpAffine(source, matrix, (280, 300), flags=cv2.INTER_NEAREST, borderMode=border)
            given = image if border == cv2.BORDER_REPLICATE else mask
            out = K.shift_images(given[None], np.array([[dy, dx]]), order=0)[0]
            np.testing.assert_array_equal(out, expected.astype(out.dtype), err_msg=f"{dy}, {dx}")


def test_recursive_filter_follows_its_recurrence_across_batches():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(5, 4, 4)).astype(np.float32)
    whole = K.recursive_filter(images, alpha=0.4)
    expected = images[0]
    for t in range(5):
        expected = 0.4 * images[t] + 0.6 * expected
        np.testing.assert_allclose(whole[t], expected, rtol=1e-5)
    first = K.recursive_filter(images[:2], alpha=0.4)
    second = K.recursive_filter(images[2:], alpha=0.4, state=first[-1])
    np.testing.assert_allclose(second, whole[2:], rtol=1e-5)
    np.testing.assert_array_equal(K.recursive_filter(images, alpha=1.0), images)
    with pytest.raises(ValueError, match="alpha"):
        K.recursive_filter(images, alpha=0.0)


def test_needle_mask_finds_a_thin_dense_rod_not_broad_bone():
    image = np.zeros((80, 80), np.float32)
    r, c = np.mgrid[:80, :80]
    image[(r - 40) ** 2 + (c - 40) ** 2 <= 20**2] += 1.5  # a broad dense disc (bone): not a needle
    image[38:41, 5:75] += 3.0  # a 3 px steel rod
    image = ndi.gaussian_filter(image, 1.0)  # detector blur
    mask = K.needle_mask(image, min_excess=1.0)
    assert mask[38:41, 5:75].mean() > 0.95
    assert not mask[:36].any() and not mask[43:].any()


def test_cement_candidates_raise_the_threshold_on_steep_baseline_edges():
    excess = np.full((10, 10), 0.3, np.float32)
    gradient = np.zeros((10, 10), np.float32)
    gradient[:, 5:] = 2.0  # steep edge: 0.25 px error would leave 0.5
    exclude = np.zeros((10, 10), bool)
    exclude[0] = True
    mask = K.cement_candidates(excess, threshold=0.2, threshold_raise=gradient, raise_gain=0.25, exclude=exclude)
    assert mask[1:, :5].all() and not mask[:, 5:].any() and not mask[0].any()


def test_accumulate_cement_needs_a_run_and_never_forgets():
    cand = np.zeros((6, 1, 3), bool)
    cand[[1, 2, 3], 0, 0] = True  # a run of 3 from t=1
    cand[[1, 3], 0, 1] = True  # never 2 in a row
    cand[[4, 5], 0, 2] = True  # run of 2 from t=4, split across batches below
    time_s = np.arange(6) * 0.5
    state = dict(
        run_length=np.zeros((1, 3), np.int16),
        run_start_s=np.zeros((1, 3), np.float32),
        accumulated=np.zeros((1, 3), bool),
        time_of_arrival_s=np.full((1, 3), np.nan, np.float32),
    )
    a = K.accumulate_cement(cand[:5], time_s=time_s[:5], min_run=2, **state)
    b = K.accumulate_cement(cand[5:], time_s=time_s[5:], min_run=2, **state)
    out = np.concatenate([a, b])[:, 0]
    np.testing.assert_array_equal(out[:, 0], [0, 0, 1, 1, 1, 1])  # stays after the run ends
    assert not out[:, 1].any()
    np.testing.assert_array_equal(out[:, 2], [0, 0, 0, 0, 0, 1])
    np.testing.assert_allclose(state["time_of_arrival_s"][0], [0.5, np.nan, 2.0])


def test_components_touching_are_kept_whole():
    mask = np.zeros((10, 10), bool)
    mask[0:3, 0:3] = True  # 9 px, touches the seed at one corner: kept whole
    mask[8, 8] = True  # 1 px, touches the seed
    mask[5, 0] = True  # 1 px, away from it: dropped
    seed = np.zeros((10, 10), bool)
    seed[8, 8] = seed[2, 2] = True
    out = K.components_touching(mask, seed)
    assert out[0:3, 0:3].all() and out[8, 8] and not out[5, 0] and out.sum() == 10
    labels, areas = K.label_components(mask)
    assert sorted(areas[1:].tolist()) == [1, 1, 9] and labels.max() == 3


def test_largest_component_px_per_frame():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :2, :2] = True
    masks[0, 5:9, 5:9] = True
    assert K.largest_component_px(masks).tolist() == [16, 0]


def test_median_keeps_a_step_in_place_and_removes_salt():
    image = np.zeros((20, 20), np.float32)
    image[:, 10:] = 5.0
    image[5, 3] = 100.0  # a lone outlier
    out = K.median(image, size_px=5)
    np.testing.assert_array_equal(out[:, :10], 0.0)
    np.testing.assert_array_equal(out[:, 10:], 5.0)
    with pytest.raises(ValueError, match="size_px"):
        K.median(image, size_px=4)


def test_clipped_fraction_sees_black_and_saturated_frames():
    rng = np.random.default_rng(3)
    frames = rng.normal(100, 10, size=(3, 30, 30)).astype(np.float32)
    frames[1] = 0.0
    frames[2, :20] = 4095.0
    fov = np.ones((30, 30), bool)
    out = K.clipped_fraction(frames, fov)
    assert out[0] < 0.01 and out[1] == 1.0
    np.testing.assert_allclose(out[2], 20 / 30)


def test_pixel_noise_recovers_white_noise_on_smooth_anatomy_and_counts_its_outliers():
    rng = np.random.default_rng(4)
    r, c = np.mgrid[:128, :128]
    anatomy = np.sin(r / 15.0) + 0.01 * c
    images = (anatomy + rng.normal(0, 0.2, size=(2, 128, 128))).astype(np.float32)
    # Frame 1: 100 of the 64 x 64 sampled pixels (every second row and column) 20 noise
    # SDs out (a byte out of place), apart enough that no 3 x 3 mean holds two of them.
    images[1, 8:88:8, 8:88:8] += 4.0
    noise, share = K.pixel_noise(images, weight=np.ones((128, 128), bool))
    np.testing.assert_allclose(noise, 0.2, rtol=0.1)
    assert share[0] == 0.0  # white noise has none 10 SDs out
    assert share[1] == 100 / 64**2
    with pytest.raises(ValueError, match="outlier_sigmas"):
        K.pixel_noise(images, weight=np.ones((128, 128), bool), outlier_sigmas=-1.0)


def test_exposure_offset_is_the_level_change_whatever_cement_covers():
    # Each frame is the reference moved by a known level (a change of tube output, in the
    # log domain) with dense cement on 40 % of the weighted pixels: under half, so the
    # median is the level itself, not pulled toward the cement.
    rng = np.random.default_rng(5)
    reference = rng.uniform(0.5, 3.0, size=(40, 50)).astype(np.float32)
    weight = np.zeros((40, 50), bool)
    weight[5:35, 5:45] = True
    levels = np.array([0.0, 0.05, -0.12, 0.3], np.float32)
    images = reference + levels[:, None, None]
    cement = np.zeros_like(weight)
    cement[5:17, 5:45] = True  # 12 of the 30 weighted rows
    images[1:, cement] += 1.5
    out = K.exposure_offset(images, reference, weight=weight)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, levels, atol=1e-6)
    assert np.isnan(K.exposure_offset(images, reference, weight=np.zeros_like(weight))).all()
    with pytest.raises(ValueError, match="weight"):
        K.exposure_offset(images, reference, weight=weight[:-1])


def displayed_reference():
    """A reference (random attenuation 0.5-3.0, ``[170, 210]``), the bone ``weight`` to read it
    on, and the reference read through four displays of known ``gains`` and levels (the
    log-encoded values scaled: every attenuation difference times the gain), ``[4, 170, 210]``."""
    reference = np.random.default_rng(6).uniform(0.5, 3.0, size=(170, 210)).astype(np.float32)
    weight = np.zeros((170, 210), bool)
    weight[10:160, 10:200] = True
    gains = np.array([1.0, 0.5, 0.8, 1.25], np.float32)
    levels = np.array([0.0, 0.4, -0.1, 0.2], np.float32)
    return reference, weight, gains, gains[:, None, None] * reference + levels[:, None, None]


def test_contrast_gain_is_the_display_gain_whatever_level_and_cement():
    # Each frame is the reference read through a display of known gain and level, with dense
    # cement on 20 % of the weighted pixels, the densest and the faintest alike.
    reference, weight, gains, images = displayed_reference()
    cement = np.zeros_like(weight)
    cement[10:40, 10:200] = True  # 30 of the 150 weighted rows
    images[1:, cement] += 1.5
    out = K.contrast_gain(images, reference, weight=weight)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], 1.0, atol=1e-6)  # no cement: the exact gain
    # Cement lifts a fifth of each half above the rest: both medians move alike (by an
    # eighth of the half's span), and the gain is found to the sampling error of the medians
    # of 2,850 pixels each (about 1 %), against changes of 20-100 %.
    np.testing.assert_allclose(out[1:], gains[1:], rtol=0.04)
    # By hand: the pixels taken (every second row and column) read 1, 2 (lower half), 3, 4
    # (upper) in the reference and 2x that plus 1 in the image; the others, which are not
    # taken, differently.
    by_hand = np.array([[1.0, 0.0, 2.0, 0.0], [0.0] * 4, [3.0, 0.0, 4.0, 0.0], [0.0] * 4], np.float32)
    image = 2 * by_hand + 1
    image[1::2] = image[:, 1::2] = 100.0
    assert K.contrast_gain(image[None], by_hand, weight=np.ones((4, 4), bool))[0] == 2.0
    assert np.isnan(K.contrast_gain(images, reference, weight=np.zeros_like(weight))).all()
    assert np.isnan(K.contrast_gain(images, np.ones_like(reference), weight=weight)).all()  # flat: no contrast
    with pytest.raises(ValueError, match="weight"):
        K.contrast_gain(images, reference, weight=weight[:-1])


def test_contrast_gain_measured_again_leaves_out_dense_cement_on_one_half_of_the_contrast():
    # Dense cement (+1.0, 50 times the noise) on 15 % of the pixels in the lower half of the
    # reference's values alone: a leak in the soft tissue in front of the body, on the little
    # bone collimator blades leave. It lifts the lower half's median alone, and the slope
    # falls by 9 %. Measured again without the pixels the fit leaves more than 5 robust
    # standard deviations more attenuating, it is the display's gain to 1 %.
    reference, weight, gains, clean = displayed_reference()
    rng = np.random.default_rng(7)
    clean = clean + rng.normal(0.0, 0.02, size=clean.shape).astype(np.float32)
    lower_half = reference < 1.75
    images = clean.copy()
    images[:, lower_half & (rng.random(reference.shape) < 0.15)] += 1.0
    first = K.contrast_gain(images, reference, weight=weight)
    np.testing.assert_allclose(first / gains, 0.91, atol=0.01)
    again = K.contrast_gain(images, reference, weight=weight, excess_sigmas=5.0)
    assert again.dtype == np.float32
    np.testing.assert_allclose(again, gains, rtol=0.01)
    # Its limit: fainter cement (+0.5 on 30 %) tilts the first fit by 9-22 %, which widens the
    # residuals past it: nothing is left out, and the gain stays the first fit's.
    faint = clean.copy()
    faint[:, lower_half & (rng.random(reference.shape) < 0.3)] += 0.5
    tilted = K.contrast_gain(faint, reference, weight=weight)
    assert (tilted / gains < 0.91).all()
    np.testing.assert_allclose(K.contrast_gain(faint, reference, weight=weight, excess_sigmas=5.0), tilted, rtol=0.01)
    # Without cement it changes the gain by the sampling error alone (of 7,125 pixels).
    np.testing.assert_allclose(K.contrast_gain(clean, reference, weight=weight, excess_sigmas=5.0), gains, rtol=0.005)
    # A fit that leaves no spread (the by-hand case: exact) keeps its slope.
    by_hand = np.array([[1.0, 0.0, 2.0, 0.0], [0.0] * 4, [3.0, 0.0, 4.0, 0.0], [0.0] * 4], np.float32)
    exact = (2 * by_hand + 1)[None]
    assert K.contrast_gain(exact, by_hand, weight=np.ones((4, 4), bool), excess_sigmas=5.0)[0] == 2.0
    assert np.isnan(K.contrast_gain(images, reference, weight=np.zeros_like(weight), excess_sigmas=5.0)).all()
    with pytest.raises(ValueError, match="excess_sigmas"):
        K.contrast_gain(images, reference, weight=weight, excess_sigmas=0.0)


def test_accumulate_cement_run_length_saturates_instead_of_wrapping():
    # A live monitor may see a pixel as cement for hours: the int16 run length stops at
    # its maximum (32767 frames) rather than wrapping to -32768.
    top = np.iinfo(np.int16).max
    state = dict(
        run_length=np.array([[top - 1, top]], np.int16),
        run_start_s=np.zeros((1, 2), np.float32),
        accumulated=np.ones((1, 2), bool),
        time_of_arrival_s=np.zeros((1, 2), np.float32),
    )
    out = K.accumulate_cement(np.ones((2, 1, 2), bool), time_s=np.array([0.0, 0.5]), min_run=2, **state)
    np.testing.assert_array_equal(state["run_length"], [[top, top]])
    assert out.all()


def test_binary_dilation_and_erosion_by_the_cross_match_scipy():
    one = np.zeros((7, 7), bool)
    one[3, 3] = True
    grown = K.binary_dilation(one, iterations=2)  # the city-block disc of radius 2: 13 px
    r, c = np.mgrid[:7, :7]
    np.testing.assert_array_equal(grown, np.abs(r - 3) + np.abs(c - 3) <= 2)
    # The edge of the image is outside for erosion: a full mask loses its border.
    full = np.ones((6, 5), bool)
    eroded = K.binary_erosion(full, iterations=1)
    assert eroded.sum() == 4 * 3 and not eroded[0].any() and not eroded[:, -1].any()
    rng = np.random.default_rng(3)
    masks = rng.random((2, 30, 41)) > 0.35
    for n in (1, 3):
        for i in range(2):
            np.testing.assert_array_equal(K.binary_dilation(masks, iterations=n)[i], ndi.binary_dilation(masks[i], iterations=n))
            np.testing.assert_array_equal(K.binary_erosion(masks, iterations=n)[i], ndi.binary_erosion(masks[i], iterations=n))
    with pytest.raises(ValueError, match="iterations"):
        K.binary_dilation(one, iterations=0)


def test_gradient_magnitude_of_a_plane_is_its_slope():
    r, c = np.mgrid[:6, :9].astype(np.float32)
    out = K.gradient_magnitude(3.0 * r - 4.0 * c)  # a plane: the same slope 5 / px everywhere, edges included
    np.testing.assert_allclose(out, 5.0, rtol=1e-6)
    assert out.dtype == np.float32
    ramp = np.array([[0.0, 1.0, 4.0, 9.0]], np.float32).repeat(3, axis=0)  # d/dcol: 1, 2, 4, 5 (one-sided at the ends)
    np.testing.assert_allclose(K.gradient_magnitude(ramp[None])[0, 1], [1.0, 2.0, 4.0, 5.0])


def test_mean_frames_of_a_list_or_a_stack():
    stack = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    np.testing.assert_array_equal(K.mean_frames(stack), stack[0] + 3.0)
    np.testing.assert_array_equal(K.mean_frames(list(stack)), stack[0] + 3.0)
    with pytest.raises(ValueError, match="one frame"):
        K.mean_frames(stack[:0])


def test_to_device_and_back_on_the_cpu():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert K.to_device(a) is a and K.to_host(a) is a
    with pytest.raises(ValueError, match="cpu only"):
        K.to_device(a, device="cuda")


@pytest.mark.parametrize("corner", [(0, 0), (3, 5), (6, 1), (13, 12)])
def test_label_components_numbers_as_opencv_on_the_whole_frame(corner):
    # The kernel labels the mask's bounding box only; numbers and areas must be those of
    # OpenCV on the whole frame, wherever the box starts (odd corners included).
    rng = np.random.default_rng(sum(corner))
    mask = np.zeros((40, 36), bool)
    r, c = corner
    mask[r : r + 20, c : c + 17] = ndi.gaussian_filter(rng.normal(size=(20, 17)), 1.0) > 0.1
    _, expected, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    labels, areas = K.label_components(mask)
    assert labels.max() >= 3  # several components to number
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(areas, stats[:, cv2.CC_STAT_AREA])
    empty_labels, empty_areas = K.label_components(np.zeros((5, 4), bool))
    assert not empty_labels.any() and empty_areas.tolist() == [20]


def test_components_answer_per_component_and_give_whole_components_back():
    mask = np.zeros((8, 12), bool)
    mask[1:3, 1:5] = True  # 8 px, 6 inside the region
    mask[5:7, 1:5] = True  # 8 px, exactly 4 inside
    mask[1:4, 8:11] = True  # 9 px, none inside
    region = np.zeros_like(mask)
    region[:, :4] = True
    region[:, 4] = False
    region[5:7, 3:] = False
    parts = K.components(mask)
    assert sorted(parts.areas.tolist()) == [0, 8, 8, 9]  # (the background's entry is 0)
    hits = K.component_hits(parts, region)
    assert sorted(hits.tolist()) == [0, 0, 4, 6]
    mostly_inside = K.component_mask(parts, 2 * hits > parts.areas)
    expected = np.zeros_like(mask)
    expected[1:3, 1:5] = True  # more than half inside: kept whole, its outside pixels too
    np.testing.assert_array_equal(mostly_inside, expected)
    np.testing.assert_array_equal(K.component_mask(parts, parts.areas >= 0), mask)  # (never the background)
    empty = K.components(np.zeros((5, 4), bool))
    assert empty.areas.tolist() == [0] and not K.component_mask(empty, empty.areas >= 0).any()


def test_registration_window_fades_in_from_the_edge_of_the_weight():
    weight = np.zeros((5, 40), bool)
    weight[:, 10:] = True  # pixels off the weight on the left only: distance grows to the right
    window = K.registration_window(weight, taper_px=4.0)
    np.testing.assert_allclose(window[2, 8:17], [0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1])
    # A study keeps it and gives it to estimate_shift: the same answer as without.
    image, moved = textured(), ndi.shift(textured(), (2.4, -3.1), order=3, mode="nearest")[None]
    ring = np.zeros((128, 128), bool)
    ring[10:-10, 10:-10] = True
    kept = K.estimate_shift(moved, image, weight=ring, window=K.registration_window(ring))
    fresh = K.estimate_shift(moved, image, weight=ring)
    np.testing.assert_array_equal(kept[0], fresh[0])
    np.testing.assert_allclose(kept[0][0], (2.4, -3.1), atol=0.1)
    with pytest.raises(ValueError, match="weight"):
        K.registration_window(np.zeros((4, 4), bool))


def test_estimate_shift_with_a_kept_reference_is_the_same():
    image, moved = textured(), ndi.shift(textured(), (2.4, -3.1), order=3, mode="nearest")[None]
    ring = np.zeros((128, 128), bool)
    ring[10:-10, 10:-10] = True
    prepared = K.registration_reference(image, weight=ring, taper_px=8.0, smooth_px=1.0)
    kept = K.estimate_shift(moved, image, weight=ring, taper_px=8.0, smooth_px=1.0, prepared=prepared)
    fresh = K.estimate_shift(moved, image, weight=ring, taper_px=8.0, smooth_px=1.0)
    for a, b in zip(kept, fresh):
        np.testing.assert_array_equal(a, b)


def test_copy_holds_its_own_memory():
    batch = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    kept = K.copy(batch[1])
    batch[1] = 0.0
    assert kept.base is None and kept.dtype == np.float32
    np.testing.assert_array_equal(kept, np.arange(12, 24, dtype=np.float32).reshape(3, 4))


@pytest.mark.parametrize("shift", [(0.4, -0.3), (11.3, -6.6)])
def test_estimate_shift_refines_as_opencv_on_the_whole_frame(shift):
    # The refinement reads only the weight's neighbourhood; OpenCV's ECC on the whole
    # frames, from the same whole-pixel start, is the truth.
    reference = textured(shape=(160, 160), seed=4)
    moved = ndi.shift(reference, shift, order=3, mode="nearest").astype(np.float32)
    weight = np.zeros(reference.shape, bool)
    weight[40:120, 30:110] = True
    shifts, score = K.estimate_shift(moved[None], reference, weight=weight)
    start = np.array([[1, 0, round(shift[1])], [0, 1, round(shift[0])]], np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
    smoothed = (K.smooth(reference, sigma_px=1.5), K.smooth(moved, sigma_px=1.5))
    rho, warp = cv2.findTransformECC(*smoothed, start, cv2.MOTION_TRANSLATION, criteria, weight.astype(np.uint8), 1)
    np.testing.assert_allclose(shifts[0], (warp[1, 2], warp[0, 2]), atol=1e-4)
    np.testing.assert_allclose(score[0], rho, atol=1e-5)
    np.testing.assert_allclose(shifts[0], shift, atol=0.1)


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 1001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_one_partition_median_of_the_noise_level_is_numpys(size, dtype):
    values = np.random.default_rng(size).normal(size=size).astype(dtype)
    values[: size // 3] = values[-1]  # ties too
    assert K._median(values) == np.median(values) and K._median(values).dtype == np.median(values).dtype
