"""The denoiser picks the weakest filter that makes the cement stand out of the noise."""

import math

import cv2
import numpy as np
import pytest
from scipy import integrate, special, stats

from vpimage.engine._denoise import LADDER, Denoiser, _white_noise_gain
from vpimage.kernels import _numpy


def frames(noise, n=4, seed=0):
    rng = np.random.default_rng(seed)
    anatomy = np.sin(np.mgrid[:96, :96][0] / 9.0).astype(np.float32)
    return [anatomy + rng.normal(0, noise, size=(96, 96)).astype(np.float32) for _ in range(n)]


def fitted(noise, **kw):
    d = Denoiser(_numpy, median_px=3, max_sigma_px=4.0, min_alpha=0.25)
    stack = frames(noise)
    region = np.ones((96, 96), bool)
    pixel = float(np.mean(_numpy.pixel_noise(np.stack(stack), weight=region)[0]))
    d.fit(stack, region, pixel_noise=pixel, contrast=0.15, min_snr=3.0)
    return d, pixel


@pytest.mark.parametrize("noise", [0.02, 0.1, 0.3])
def test_filtered_noise_is_what_the_filter_leaves(noise):
    d, _ = fitted(noise)
    # Truth: filter an independent frame difference (excess = frame - baseline mean).
    a, b = frames(noise, n=2, seed=7)
    spatial = np.std(d.apply(a - b)[8:-8, 8:-8]) / np.sqrt(2)  # the chosen median and Gaussian
    expected = spatial * np.sqrt(1 + 1 / 4) * np.sqrt(d.alpha / (2 - d.alpha))
    np.testing.assert_allclose(d.filtered_noise, expected, rtol=0.2)


def test_noisier_studies_get_stronger_filters_until_the_ladder_ends():
    chosen = [fitted(n)[0] for n in (0.02, 0.1, 0.3, 3.0)]
    steps = [LADDER.index((d.median_px, d.sigma_px, d.alpha)) for d in chosen]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == len(LADDER) - 1
    quiet, _ = fitted(0.1)
    assert 0.15 >= 3.0 * quiet.filtered_noise  # the goal is met when it can be
    loud, _ = fitted(3.0)
    assert 0.15 < 3.0 * loud.filtered_noise  # and honestly not met when it cannot


def test_a_median_of_1_px_is_no_median_and_the_weakest_step():
    # The ladder holds medians of 3 and 5 px; a configured 1 (documented: 1, 3 or 5) ran as 3.
    d = Denoiser(_numpy, median_px=1, max_sigma_px=4.0, min_alpha=0.25)
    assert d.ladder == ((1, 0.0, 1.0), *LADDER)
    assert _white_noise_gain(1, 0.0) == pytest.approx(1.0, abs=0.005)  # unfiltered N(0, 1) over 1024 x 1024


def test_noise_now_scales_with_the_frame_noise():
    d, pixel = fitted(0.1)
    assert d.noise_now(2 * pixel) == pytest.approx(2 * d.filtered_noise)


def test_noise_map_follows_the_attenuation_level():
    # Quantum noise grows with attenuation: a dense band (the needle's shadow) is 10x
    # noisier than the rest. The map must give each region its own filtered noise.
    rng = np.random.default_rng(3)
    level = np.zeros((96, 96), np.float32)
    level[40:56, :] = 5.0
    sigma = np.where(level > 0, 0.5, 0.05).astype(np.float32)
    stack = [level + rng.normal(0.0, 1.0, size=level.shape).astype(np.float32) * sigma for _ in range(6)]
    d, _ = fitted(0.1)
    noise = d.noise_map(stack, level, np.ones(level.shape, bool))
    # Truth: the chosen spatial filter on white noise of each sigma, scaled for a
    # 6-frame baseline (no recursive filter in the map).
    white = d.apply(rng.normal(0.0, 1.0, size=(96, 96)).astype(np.float32))[8:-8, 8:-8].std()
    scale = np.sqrt(1 + 1 / 6)
    np.testing.assert_allclose(np.median(noise[44:52]), 0.5 * white * scale, rtol=0.25)
    np.testing.assert_allclose(np.median(noise[:30]), 0.05 * white * scale, rtol=0.25)
    # From one frame (all a baseline may have when cement shows in the second usable frame),
    # the same, read from its pixels' spread about their 3 x 3 mean and scaled for a 1-frame
    # baseline (it was 0: no pixel's threshold rose for its noise).
    single = d.noise_map(stack[:1], level, np.ones(level.shape, bool))
    np.testing.assert_allclose(np.median(single[44:52]), 0.5 * white * np.sqrt(2), rtol=0.25)
    np.testing.assert_allclose(np.median(single[:30]), 0.05 * white * np.sqrt(2), rtol=0.25)
    # Asked for another filter's noise (here none: a 1 px median), the map gives that one's:
    # the pixels' own noise, about twice the chosen filter's.
    assert white < 0.5
    unfiltered = d.noise_map(stack, level, np.ones(level.shape, bool), step=(1, 0.0, 1.0))
    np.testing.assert_allclose(np.median(unfiltered[44:52]), 0.5 * scale, rtol=0.25)
    np.testing.assert_allclose(np.median(unfiltered[:30]), 0.05 * scale, rtol=0.25)
    # For a frame against the mean of two others (not the six it comes from), scaled so.
    two = d.noise_map(stack[:1], level, np.ones(level.shape, bool), baseline_frames=2)
    np.testing.assert_allclose(two, single * np.sqrt(1.5 / 2.0), rtol=1e-5)


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.13, 0.19, 1.0])  # (each spatial step, and none enough)
def test_single_frame_step_is_the_weakest_spatial_one_that_white_noise_allows(noise):
    # Truth: each spatial step's gain on white noise, measured here on another field (the
    # noises asked lie clear of what either field gives).
    d = Denoiser(_numpy, median_px=3, max_sigma_px=4.0, min_alpha=0.25)
    white = np.random.default_rng(11).normal(0.0, 1.0, size=(256, 256)).astype(np.float32)
    spatial = [step for step in LADDER if step[2] == 1.0]
    gains = [float(np.std(d.apply(white, step)[8:-8, 8:-8])) for step in spatial]
    scale = math.sqrt(1 + 1 / 4)
    meets = [0.15 >= 3.0 * noise * scale * g for g in gains]
    expected = spatial[meets.index(True)] if any(meets) else spatial[-1]
    chosen = d.single_frame_step(noise, contrast=0.15, min_snr=3.0, baseline_frames=4)
    assert chosen == expected
    assert chosen[2] == 1.0  # never the recursive filter: frames are compared one by one


@pytest.mark.parametrize("median_px", [3, 5])
def test_white_noise_gain_of_a_median_is_its_order_statistics(median_px):
    # Truth: the standard deviation of the median of n = median_px**2 unit normals, from the
    # density of the middle order statistic, n! / ((k-1)! (n-k)!) F**(k-1) (1-F)**(n-k) f.
    n = median_px**2
    k = (n + 1) // 2

    def density(x):
        below, above = stats.norm.cdf(x) ** (k - 1), stats.norm.sf(x) ** (n - k)
        return n * special.comb(n - 1, k - 1) * below * above * stats.norm.pdf(x)

    variance, _ = integrate.quad(lambda x: x * x * density(x), -np.inf, np.inf)
    assert _white_noise_gain(median_px, 0.0) == pytest.approx(math.sqrt(variance), rel=0.005)


@pytest.mark.parametrize("sigma_px", [0.75, 2.0, 4.0])
def test_white_noise_gain_of_a_gaussian_is_the_root_of_its_squared_weights(sigma_px):
    # Truth: independent pixels through a separable kernel w x w keep sqrt(sum (w_i w_j)**2) =
    # sum w_i**2 of their standard deviation; w is OpenCV's kernel (4 widths each side).
    # (A 1 px median leaves the noise as it is; the ladder's widest Gaussian reaches 16 px.)
    weights = cv2.getGaussianKernel(int(round(8 * sigma_px + 1)) | 1, sigma_px, cv2.CV_64F).ravel()
    assert _white_noise_gain(1, sigma_px) == pytest.approx(float(np.sum(weights**2)), rel=0.005)


def test_shift_residual_is_the_slope_on_a_ramp_moved_a_whole_pixel():
    # Moved by a whole pixel the bicubic move is exact, and the median and Gaussian leave a
    # linear ramp as it is: the change is the slope, 0.05 per px, wherever the filter sees no border.
    d = Denoiser(_numpy, median_px=3, max_sigma_px=1.0, min_alpha=1.0)  # median 5, Gaussian 1 px
    ramp = (0.05 * np.mgrid[:64, :64][1]).astype(np.float32)
    residual = d.shift_residual(ramp, step_px=1.0)
    np.testing.assert_allclose(residual[16:-16, 16:-16], 0.05, rtol=1e-4)


def test_shift_residual_sees_a_sharp_step_whole():
    # A step of 1.0 between two pixels, filtered by a 5 px median (which keeps a straight step sharp):
    # moved by a pixel, the pixels at the step change by all of it. The smoothed gradient
    # (Gaussian 1 px, then central differences across the step at 31.5) sees
    # (Phi(0.5) - Phi(-1.5)) / 2, about 0.31, of it.
    d = Denoiser(_numpy, median_px=3, max_sigma_px=0.0, min_alpha=1.0)
    image = np.zeros((64, 64), np.float32)
    image[32:, :] = 1.0
    residual = d.shift_residual(image, step_px=1.0)
    gradient = _numpy.gradient_magnitude(_numpy.smooth(image, sigma_px=1.0))
    np.testing.assert_allclose(residual[31:33, 20:44], 1.0, atol=1e-5)
    phi = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    assert gradient[28:37, 20:44].max() == pytest.approx((phi(0.5) - phi(-1.5)) / 2, rel=0.05)


def test_a_white_patch_in_the_pre_injection_frames_is_not_taken_for_noise():
    # posterior_breach seed 24 (256 px) with a white disc (453 px, 1 % of the field) on the
    # posterior body from frame 8, within the baseline: its clipped pixels, which no frame
    # measures, were fitted as noise (0.20 against 0.038), the strongest filter was chosen
    # and every frame after read image_too_noisy, no cement ever seen.
    from test_accuracy import analyse, as_ingested

    from vpimage.measures import Corners
    from vpimage.synth._phantom import SynthOptions, simulate

    sim = simulate("posterior_breach", seed=24, options=SynthOptions(size_px=256, frames=30))
    corners = Corners.from_dict(sim.truth["vertebral_body"])
    frames = as_ingested(sim.run)
    centre = (corners.as_array()[1] + corners.as_array()[2]) / 2
    rows, cols = np.indices(frames.shape[1:])
    frames[8:, (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 < 12**2] = 2**sim.run.bits_stored - 1
    out, plain = analyse(sim.run, corners, frames), analyse(sim.run, corners)
    assert not any("image_too_noisy" in f.result.reason for f in out)
    assert out[-1].result.cement_area_px >= 0.9 * plain[-1].result.cement_area_px > 0

