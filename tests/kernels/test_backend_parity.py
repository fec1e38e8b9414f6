"""The torch kernels give the numpy kernels' answers, on torch CPU and on CUDA where present.

Inputs come from a small phantom run (the truth here is the numpy backend, itself tested
against hand-computed values in ``test_numpy.py``) and from edge cases.

Tolerances, float32 throughout:
- pointwise and filter kernels: rtol 1e-5, atol 1e-5 (attenuation units, ~0 to 11). Both
  sides round each float32 operation; sums run in another order, which moves the last
  bit or two of values up to ~10: well inside atol 1e-5.
- estimate_shift: 1e-3 px and 1e-4 in score. The whole-pixel step is an FFT argmax
  (equal); the ECC refinement is OpenCV's algorithm reproduced step by step, but its
  Gauss-Newton path (up to 50 steps) carries the float32 rounding of other summation
  orders, each step re-sampling the image at the moved position, and a GPU sums in yet
  another order. Measured on torch CPU: 4e-7 px and 1e-7 in score.
- masks and labels: exact. They are thresholds of values that agree to rounding, so a
  pixel could only flip when it sits within ~1e-6 of a threshold, which the phantom
  inputs here do not do (a flip would show as a failure, not be absorbed).
"""

from __future__ import annotations

import inspect
from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage as ndi

torch = pytest.importorskip("torch", reason="the torch backend is not installed here")

from vpimage.errors import BackendUnavailableError
from vpimage.kernels import _numpy, _torch, get_backend
from vpimage.synth import SynthOptions, simulate

RTOL = ATOL = 1e-5
SHIFT_ATOL_PX = 1e-3

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available on this machine")
    ),
]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda":
        # No TF32 anywhere in a parity run: the kernels do not use matmul-class ops on
        # images, and this keeps it so should one slip in.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return request.param


@lru_cache(maxsize=None)
def phantom():
    """A short posterior approach, 128 px, 12 frames: breathing motion, noise, needle, cement."""
    result = simulate("posterior_approach", seed=1, options=SynthOptions(size_px=128, frames=12, fps=5.0))
    frames = result.run.frames.astype(np.float32)
    fov = result.run.field.mask(*frames.shape[1:])
    att = _numpy.mask_field(_numpy.attenuation(frames, white_level=float(frames.max())), fov, fill=1.0)
    return frames, fov, att, result.cement_masks


def T(array, device):
    return torch.as_tensor(np.ascontiguousarray(array), device=device)


def host(tensor):
    return tensor.cpu().numpy()


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    assert isinstance(actual, torch.Tensor)
    np.testing.assert_allclose(host(actual), expected, rtol=rtol, atol=atol)


# -- the contract ------------------------------------------------------------------------


def test_both_backends_export_the_same_names():
    assert sorted(_torch.__all__) == sorted(_numpy.__all__)
    assert all(callable(getattr(_torch, name)) for name in _torch.__all__)


def untyped(function):
    """The signature without annotations: ``np.ndarray`` and ``torch.Tensor`` must differ."""
    signature = inspect.signature(function)
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)


@pytest.mark.parametrize("name", _numpy.__all__)
def test_signatures_are_equal(name):
    # Names, order, kinds (positional / keyword-only) and defaults.
    assert untyped(getattr(_torch, name)) == untyped(getattr(_numpy, name))


def test_registry_gives_the_torch_module():
    assert get_backend("torch", device="cpu") is _torch
    assert get_backend("torch") is _torch
    assert _torch.is_available()


def test_registry_gives_cuda_only_where_there_is_a_device():
    if torch.cuda.is_available():
        assert get_backend("torch", device="cuda") is _torch
        assert get_backend("auto", device="cuda") is _torch
    else:
        for name in ("torch", "auto"):
            with pytest.raises(BackendUnavailableError, match="no CUDA device"):
                get_backend(name, device="cuda")


# -- pointwise ---------------------------------------------------------------------------


@pytest.mark.parametrize("log_range", [0.0, 11.0])
def test_attenuation(device, log_range):
    frames, *_ = phantom()
    edge = np.array([[[0.0, 0.5, 1.0, 4095.0, 5000.0]]], np.float32)  # below the floor, white, above white
    for x in (frames, edge):
        expected = _numpy.attenuation(x, white_level=4095.0, log_range=log_range)
        out = _torch.attenuation(T(x, device), white_level=4095.0, log_range=log_range)
        assert out.dtype == torch.float32 and out.device.type == device
        assert_close(out, expected)
    with pytest.raises(ValueError, match="white_level"):
        _torch.attenuation(T(edge, device), white_level=0.0)


def test_mask_field(device):
    _, fov, att, _ = phantom()
    out = _torch.mask_field(T(att, device), T(fov, device), fill=-2.0)
    np.testing.assert_array_equal(host(out), _numpy.mask_field(att, fov, fill=-2.0))
    with pytest.raises(ValueError, match="fov_mask"):
        _torch.mask_field(T(att, device), T(fov[1:], device))


def test_cement_candidates(device):
    _, fov, att, _ = phantom()
    excess = att - att[0]
    gradient = np.hypot(*np.gradient(att[0]))
    exclude = ~fov
    kwargs = dict(threshold=0.05, raise_gain=0.3)
    expected = _numpy.cement_candidates(excess, threshold_raise=gradient, exclude=exclude, **kwargs)
    out = _torch.cement_candidates(
        T(excess, device), threshold_raise=T(gradient, device), exclude=T(exclude, device), **kwargs
    )
    assert expected.any()
    np.testing.assert_array_equal(host(out), expected)
    np.testing.assert_array_equal(
        host(_torch.cement_candidates(T(excess[3], device), threshold=0.05)), _numpy.cement_candidates(excess[3], threshold=0.05)
    )


def test_recursive_filter_across_batches(device):
    _, _, att, _ = phantom()
    first = _numpy.recursive_filter(att[:5], alpha=0.3)
    expected = _numpy.recursive_filter(att[5:], alpha=0.3, state=first[-1])
    out_first = _torch.recursive_filter(T(att[:5], device), alpha=0.3)
    out = _torch.recursive_filter(T(att[5:], device), alpha=0.3, state=out_first[-1])
    assert_close(out_first, first)
    assert_close(out, expected)
    with pytest.raises(ValueError, match="alpha"):
        _torch.recursive_filter(T(att, device), alpha=1.5)


def test_accumulate_cement_in_two_batches(device):
    _, _, att, _ = phantom()
    candidates = (att - att[0]) > 0.05
    time_s = np.arange(len(att)) * 0.2

    def state(lib, to):
        rows, cols = att.shape[1:]
        return dict(
            run_length=to(np.zeros((rows, cols), np.int16)),
            run_start_s=to(np.zeros((rows, cols), np.float32)),
            accumulated=to(np.zeros((rows, cols), bool)),
            time_of_arrival_s=to(np.full((rows, cols), np.nan, np.float32)),
        )

    ref, mine = state(np, np.array), state(torch, lambda a: T(a, device))
    for part in (slice(0, 7), slice(7, None)):
        expected = _numpy.accumulate_cement(candidates[part], time_s=time_s[part], min_run=2, **ref)
        out = _torch.accumulate_cement(T(candidates[part], device), time_s=T(time_s[part], device), min_run=2, **mine)
        np.testing.assert_array_equal(host(out), expected)
    assert ref["accumulated"].any()
    for key in ref:  # the state carried over is the same
        np.testing.assert_array_equal(host(mine[key]), ref[key])


# -- statistics --------------------------------------------------------------------------


def test_clipped_fraction(device):
    frames, fov, _, _ = phantom()
    edge = frames[:3].copy()
    edge[1] = 0.0  # black
    edge[2, :60] = 4095.0  # half saturated
    for x, mask in ((frames, fov), (edge, fov), (edge, np.zeros_like(fov))):  # the last: no exposed pixel
        assert_close(_torch.clipped_fraction(T(x, device), T(mask, device)), _numpy.clipped_fraction(x, mask))
    with pytest.raises(ValueError, match="fov_mask"):  # no silent broadcasting
        _torch.clipped_fraction(T(frames[:, :1, :1], device), T(fov, device))


def test_a_batch_of_no_frame_gives_no_value_in_both_backends(device):
    # (Each of these raised in one backend and returned nothing in the other: torch's
    # exposure_offset and contrast_gain, numpy's binary_dilation, binary_erosion and
    # estimate_shift. The engine never passes an empty batch; a kernel's user may.)
    _, fov, att, _ = phantom()
    none, reference, weight = att[:0], att[0], ndi.binary_erosion(fov, iterations=10)
    for name in ("exposure_offset", "contrast_gain"):
        values = (getattr(module, name)(x(none), x(reference), weight=x(weight))
                  for module, x in ((_numpy, np.asarray), (_torch, lambda a: T(a, device))))
        assert [tuple(v.shape) for v in values] == [(0,), (0,)]
    for name in ("binary_dilation", "binary_erosion"):
        assert _numpy.__dict__[name](none > 0).shape == tuple(_torch.__dict__[name](T(none > 0, device)).shape)
    shifts, score = _numpy.estimate_shift(none, reference, weight=weight)
    assert shifts.shape == (0, 2) and score.shape == (0,)


@pytest.mark.parametrize("even", [False, True])
def test_pixel_noise(device, even):
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=10)
    if even != (weight[::2, ::2].sum() % 2 == 0):  # both median conventions: odd count, mean of two middles
        row, col = np.argwhere(weight[::2, ::2])[0]  # (the noise is taken on every second row and column)
        weight[2 * row, 2 * col] = False
    att = att.copy()
    att[1, 20:60:2, 30:70:2] += 5.0  # outliers on the sampled grid of one frame
    expected_noise, expected_share = _numpy.pixel_noise(att, weight=weight)
    assert expected_share[1] > 0.05 > expected_share[0]
    noise, share = _torch.pixel_noise(T(att, device), weight=T(weight, device))
    assert_close(noise, expected_noise)
    assert_close(share, expected_share)
    empty = np.zeros_like(weight)
    assert all(torch.isnan(out).all() for out in _torch.pixel_noise(T(att[:1], device), weight=T(empty, device)))
    assert all(out.shape == (0,) for out in _torch.pixel_noise(T(att[:0], device), weight=T(weight, device)))
    with pytest.raises(ValueError, match="weight"):
        _torch.pixel_noise(T(att, device), weight=T(weight[:-1], device))
    with pytest.raises(ValueError, match="outlier_sigmas"):
        _torch.pixel_noise(T(att, device), weight=T(weight, device), outlier_sigmas=0.0)


@pytest.mark.parametrize("even", [False, True])
@pytest.mark.parametrize("kernel", ["exposure_offset", "contrast_gain"])
def test_frame_against_reference(device, kernel, even):
    # The level and the contrast of frames against a reference, on the bone of a weight.
    numpy_kernel, torch_kernel = getattr(_numpy, kernel), getattr(_torch, kernel)
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=10)
    if even != (weight.sum() % 2 == 0):  # both median conventions: odd count, mean of two middles
        weight[tuple(np.argwhere(weight)[0])] = False
    gains = np.linspace(0.6, 1.4, len(att), dtype=np.float32)[:, None, None]
    images = gains * att + np.linspace(-0.2, 0.2, len(att), dtype=np.float32)[:, None, None]
    expected = numpy_kernel(images, att[0], weight=weight)
    assert_close(torch_kernel(T(images, device), T(att[0], device), weight=T(weight, device)), expected)
    nan_cases = [(att[0], np.zeros_like(weight))]  # no pixel
    if kernel == "contrast_gain":
        nan_cases.append((np.ones_like(att[0]), weight))  # a flat reference: no contrast
    for reference, where in nan_cases:
        assert torch.isnan(torch_kernel(T(images, device), T(reference, device), weight=T(where, device))).all()
    with pytest.raises(ValueError, match="weight"):
        torch_kernel(T(images, device), T(att[0], device), weight=T(weight[:-1], device))


@pytest.mark.parametrize("even", [False, True])
def test_contrast_gain_measured_again_without_dense_cement(device, even):
    # Dense cement on a sixth of the reference's lower half (the case of the numpy kernel's
    # own test), and noise: the pixels left out, and so the medians, are each frame's own.
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=10)
    if even != (weight.sum() % 2 == 0):
        weight[tuple(np.argwhere(weight)[0])] = False
    rng = np.random.default_rng(3)
    gains = np.linspace(0.6, 1.4, len(att), dtype=np.float32)[:, None, None]
    images = gains * att + rng.normal(0.0, 0.02, size=att.shape).astype(np.float32)
    images[:, (att[0] < np.median(att[0][weight])) & (rng.random(att[0].shape) < 0.15)] += 1.0
    expected = _numpy.contrast_gain(images, att[0], weight=weight, excess_sigmas=5.0)
    assert not np.allclose(expected, _numpy.contrast_gain(images, att[0], weight=weight), rtol=0.01)  # (some left out)
    assert_close(_torch.contrast_gain(T(images, device), T(att[0], device), weight=T(weight, device), excess_sigmas=5.0),
                 expected)
    # An exact fit (no spread) keeps its slope; no pixel, no gain.
    exact = 2 * att[:2] + 1
    assert_close(_torch.contrast_gain(T(exact, device), T(att[0], device), weight=T(weight, device), excess_sigmas=5.0),
                 _numpy.contrast_gain(exact, att[0], weight=weight, excess_sigmas=5.0))
    none = T(np.zeros_like(weight), device)
    assert torch.isnan(_torch.contrast_gain(T(images, device), T(att[0], device), weight=none, excess_sigmas=5.0)).all()
    with pytest.raises(ValueError, match="excess_sigmas"):
        _torch.contrast_gain(T(images, device), T(att[0], device), weight=T(weight, device), excess_sigmas=-1.0)


# -- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("size_px", [1, 3, 5])
def test_median(device, size_px):
    _, _, att, _ = phantom()
    assert_close(_torch.median(T(att, device), size_px=size_px), _numpy.median(att, size_px=size_px))
    assert_close(_torch.median(T(att[0], device), size_px=size_px), _numpy.median(att[0], size_px=size_px))
    with pytest.raises(ValueError, match="size_px"):
        _torch.median(T(att, device), size_px=7)


@pytest.mark.parametrize("side", [3, 5])
def test_the_median_network_selects_the_median_of_every_input(side):
    """By the 0-1 principle a comparator network selects the k-th value of every input
    when it does so for every input of zeros and ones: all 2**9 and 2**25 of them, 8 at a
    time in the bits of a byte (minimum = and, maximum = or)."""
    count = side * side
    index = np.arange(2**count, dtype=np.uint32)
    values = [np.packbits((index >> i) & 1 == 1) for i in range(count)]
    for low, high, keep_low, keep_high in _torch._MEDIAN_NETWORKS[side]:
        a, b = values[low], values[high]
        if keep_low:
            values[low] = a & b
        if keep_high:
            values[high] = a | b
    # The median of zeros and ones is 1 when more than half are ones.
    assert np.array_equal(values[count // 2], np.packbits(np.bitwise_count(index) > count // 2))


@pytest.mark.parametrize("size_px", [3, 5])
def test_median_is_exact_with_ties(device, size_px):
    levels = np.random.default_rng(7).integers(0, 4, size=(2, 41, 37)).astype(np.float32) / 4
    got = _torch.median(T(levels, device), size_px=size_px).cpu().numpy()
    assert np.array_equal(got, _numpy.median(levels, size_px=size_px))


@pytest.mark.parametrize("sigma_px", [0.0, 0.1, 0.7, 1.5, 3.2])
def test_smooth(device, sigma_px):
    _, _, att, _ = phantom()
    assert_close(_torch.smooth(T(att, device), sigma_px=sigma_px), _numpy.smooth(att, sigma_px=sigma_px))
    assert_close(_torch.smooth(T(att[2], device), sigma_px=sigma_px), _numpy.smooth(att[2], sigma_px=sigma_px))


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_block_mean(device, factor):
    _, _, att, _ = phantom()
    odd = att[:, 1:, :-2]  # sides that leave a remainder for factors 2 and 3
    assert_close(_torch.block_mean(T(odd, device), factor=factor), _numpy.block_mean(odd, factor=factor))
    assert_close(_torch.block_mean(T(att[0], device), factor=factor), _numpy.block_mean(att[0], factor=factor))
    with pytest.raises(ValueError, match="factor"):
        _torch.block_mean(T(att, device), factor=0)


@pytest.mark.parametrize("background_px", [15, 7, 4])
def test_needle_mask(device, background_px):
    _, _, att, _ = phantom()
    reference = att[0]
    threshold = 0.3
    expected = _numpy.needle_mask(reference, min_excess=threshold, background_px=background_px)
    out = _torch.needle_mask(T(reference, device), min_excess=threshold, background_px=background_px)
    assert expected.any()
    np.testing.assert_array_equal(host(out), expected)


@pytest.mark.parametrize("iterations", [1, 2, 5])
def test_binary_dilation_and_erosion(device, iterations):
    masks = random_masks(seed=10)
    for k in ("binary_dilation", "binary_erosion"):
        for x in (masks, masks[0], np.ones((9, 7), bool)):
            out = getattr(_torch, k)(T(x, device), iterations=iterations)
            assert out.dtype == torch.bool and out.device.type == device
            np.testing.assert_array_equal(host(out), getattr(_numpy, k)(x, iterations=iterations))
    with pytest.raises(ValueError, match="iterations"):
        _torch.binary_erosion(T(masks, device), iterations=0)


def test_gradient_magnitude(device):
    _, _, att, _ = phantom()
    smoothed = _numpy.smooth(att, sigma_px=1.0)
    for x in (smoothed, smoothed[0], smoothed[:1, :2, :3]):
        assert_close(_torch.gradient_magnitude(T(x, device)), _numpy.gradient_magnitude(x))


def test_mean_frames(device):
    _, _, att, _ = phantom()
    assert_close(_torch.mean_frames(T(att, device)), _numpy.mean_frames(att))
    assert_close(_torch.mean_frames([T(a, device) for a in att[:5]]), _numpy.mean_frames(list(att[:5])))
    mixed = _torch.mean_frames([att[0], T(att[1], device)])  # a host array joins the tensors' device
    assert mixed.device.type == device
    assert_close(mixed, _numpy.mean_frames(list(att[:2])))
    with pytest.raises(ValueError, match="one frame"):
        _torch.mean_frames(T(att[:0], device))


def test_copy_is_a_new_tensor_on_the_same_device(device):
    _, _, att, _ = phantom()
    batch = T(att.copy(), device)  # (on the cpu a tensor shares the numpy array's memory)
    kept = _torch.copy(batch[3])
    batch[3] = 0.0
    assert kept.device.type == device and kept.untyped_storage().nbytes() == att[3].nbytes
    np.testing.assert_array_equal(host(kept), _numpy.copy(att[3]))


def test_to_device_and_back(device):
    frames, *_ = phantom()
    on = _torch.to_device(frames, device=device)
    assert on.device.type == device and on.dtype == torch.float32
    back = _torch.to_host(on)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, frames)


# -- translation -------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 3])
def test_shift_images(device, order):
    _, _, att, _ = phantom()
    shifts = np.array([[0.0, 0.0], [0.5, -0.5], [2.25, 7.8], [-13.4, 0.01], [1.5, 2.5], [-0.3, 40.0]] * 2)
    assert_close(_torch.shift_images(T(att, device), T(shifts, device), order=order), _numpy.shift_images(att, shifts, order=order))


def test_shift_masks(device):
    _, _, _, cement = phantom()
    masks = cement.astype(bool)
    shifts = np.array([[0.5, -0.5], [2.5, 1.5], [-3.49, 0.51]] * 4)
    out = _torch.shift_images(T(masks, device), shifts, order=1)
    assert out.dtype == torch.bool
    np.testing.assert_array_equal(host(out), _numpy.shift_images(masks, shifts, order=1))
    with pytest.raises(ValueError, match="order"):
        _torch.shift_images(T(masks, device), shifts, order=2)


def test_estimate_shift_on_the_phantom(device):
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=12)
    shifts, score = _numpy.estimate_shift(att, att[0], weight=weight)
    out_shifts, out_score = _torch.estimate_shift(T(att, device), T(att[0], device), weight=T(weight, device))
    assert np.abs(shifts).max() > 0.2  # the run breathes: there is motion to find
    assert_close(out_shifts, shifts, rtol=0, atol=SHIFT_ATOL_PX)
    assert_close(out_score, score, rtol=0, atol=1e-4)


@pytest.mark.parametrize("shift", [(3.3, -6.7), (-11.0, 9.5)])
def test_estimate_shift_of_a_known_translation(device, shift):
    _, fov, att, _ = phantom()
    moved = ndi.shift(att[0], shift, order=3, mode="nearest")[None].astype(np.float32)
    weight = ndi.binary_erosion(fov, iterations=20)
    shifts, score = _numpy.estimate_shift(moved, att[0], weight=weight)
    out_shifts, out_score = _torch.estimate_shift(T(moved, device), T(att[0], device), weight=T(weight, device))
    np.testing.assert_allclose(shifts[0], shift, atol=0.1)  # the reference itself is right
    assert_close(out_shifts, shifts, rtol=0, atol=SHIFT_ATOL_PX)
    assert_close(out_score, score, rtol=0, atol=1e-4)


def test_estimate_scale_on_a_magnified_phantom_frame(device):
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=20)
    rows, cols = att.shape[1:]
    centre = np.array([(rows - 1) / 2, (cols - 1) / 2])
    frames = np.stack([  # the frame itself, and magnified 3 % about the middle
        att[0], ndi.affine_transform(att[0], np.full(2, 1 / 1.03), offset=centre - centre / 1.03, order=3, mode="nearest")
    ]).astype(np.float32)
    shifts, _ = _numpy.estimate_shift(frames, att[0], weight=weight)
    scales, score = _numpy.estimate_scale(frames, att[0], weight=weight, shifts=shifts)
    np.testing.assert_allclose(scales, [[1.0, 1.0], [1.03, 1.03]], atol=0.003)  # the reference itself is right
    out_scales, out_score = _torch.estimate_scale(
        T(frames, device), T(att[0], device), weight=T(weight, device), shifts=T(shifts, device)
    )
    assert out_scales.device.type == device and out_score.device.type == device
    assert_close(out_scales, scales, rtol=0, atol=1e-6)
    assert_close(out_score, score, rtol=0, atol=1e-6)


def test_estimate_shift_when_the_refinement_fails(device):
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(64, 64)).astype(np.float32)
    unrelated = rng.normal(size=(3, 64, 64)).astype(np.float32)  # noise: ECC aborts or scores low
    weight = np.ones((64, 64), bool)  # the whole image: window measured from scipy's (-1, 0)
    shifts, score = _numpy.estimate_shift(unrelated, reference, weight=weight)
    out_shifts, out_score = _torch.estimate_shift(T(unrelated, device), T(reference, device), weight=T(weight, device))
    assert_close(out_score, score, rtol=0, atol=1e-4)
    assert_close(out_shifts, shifts, rtol=0, atol=SHIFT_ATOL_PX)
    with pytest.raises(ValueError, match="weight"):
        _torch.estimate_shift(T(unrelated, device), T(reference, device), weight=T(~weight, device))
    empty_shifts, empty_score = _torch.estimate_shift(T(unrelated[:0], device), T(reference, device), weight=T(weight, device))
    assert empty_shifts.shape == (0, 2) and empty_score.shape == (0,)


@pytest.mark.parametrize("taper_px", [16.0, 5.5, 0.5])
def test_registration_window_is_scipy_distance(device, taper_px):
    _, fov, _, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=6)
    weight[:, :3] = True  # runs off the image edge: the edge is not "outside"
    expected = _numpy.registration_window(weight, taper_px=taper_px)
    assert_close(_torch.registration_window(T(weight, device), taper_px=taper_px), expected)
    with pytest.raises(ValueError, match="weight"):
        _torch.registration_window(T(np.zeros_like(weight), device))


def test_estimate_shift_with_a_kept_window_or_reference_is_the_same(device):
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=12)
    window = _torch.registration_window(T(weight, device))
    kept = _torch.estimate_shift(T(att, device), T(att[0], device), weight=T(weight, device), window=window)
    fresh = _torch.estimate_shift(T(att, device), T(att[0], device), weight=T(weight, device))
    prepared = _torch.registration_reference(T(att[0], device), weight=T(weight, device), window=window)
    reused = _torch.estimate_shift(T(att, device), T(att[0], device), weight=T(weight, device), prepared=prepared)
    for a, b, c in zip(kept, fresh, reused):
        assert torch.equal(a, b) and torch.equal(a, c)


# -- components --------------------------------------------------------------------------


def random_masks(frames=3, shape=(64, 80), density=0.45, seed=7):
    """Random blobs: many components, touching the edges, of every shape."""
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(size=(frames, *shape)), (0, 1.2, 1.2)) > (1 - 2 * density) * 0.3


def test_label_components_numbers_like_opencv(device):
    _, _, _, cement = phantom()
    for mask in (*random_masks(), cement[-1].astype(bool), np.zeros((9, 7), bool), np.ones((9, 7), bool)):
        labels, areas = _numpy.label_components(mask)
        out_labels, out_areas = _torch.label_components(T(mask, device))
        assert out_labels.dtype == torch.int32 and out_areas.dtype == torch.int64
        np.testing.assert_array_equal(host(out_labels), labels)
        np.testing.assert_array_equal(host(out_areas), areas)


def test_components_touching(device):
    masks = random_masks(seed=8)
    for mask, touching in ((masks[0], masks[1] & masks[2]), (masks[0], ~masks[0]), (masks[0], masks[0])):
        expected = _numpy.components_touching(mask, touching)
        np.testing.assert_array_equal(host(_torch.components_touching(T(mask, device), T(touching, device))), expected)
    assert 0 < _numpy.components_touching(masks[0], masks[1] & masks[2]).sum() < masks[0].sum()  # (keeps some)


def test_questions_about_components(device):
    # The per-component vectors are each backend's own: compare what they give back in pixels.
    masks = random_masks(seed=11)
    for mask, region in ((masks[0], masks[1]), (masks[0], ~masks[2]), (masks[0], np.zeros_like(masks[0]))):
        answers = []
        for kernels, to in ((_numpy, np.asarray), (_torch, lambda a: T(a, device))):
            parts = kernels.components(to(mask))
            hits = kernels.component_hits(parts, to(region))
            kept = [(2 * hits > parts.areas), (parts.areas >= 12) & (hits == 0), parts.areas >= 0]
            answers.append([np.asarray(kernels.to_host(kernels.component_mask(parts, keep))) for keep in kept])
        for expected, out in zip(*answers):
            np.testing.assert_array_equal(out, expected)
    parts = _numpy.components(masks[0])
    assert _numpy.component_mask(parts, 2 * _numpy.component_hits(parts, masks[1]) > parts.areas).any()  # (keeps some)


def test_largest_component_px(device):
    masks = np.concatenate([random_masks(seed=9), np.zeros((1, 64, 80), bool)])
    expected = _numpy.largest_component_px(masks)
    assert expected[-1] == 0 and expected[0] > 0
    np.testing.assert_array_equal(host(_torch.largest_component_px(T(masks, device))), expected)


def test_the_off_host_schedule_gives_the_same_answers(monkeypatch):
    # Off the host (CUDA), ECC and label propagation check for convergence only every few
    # iterations (each check waits on the device), ECC iterates all frames in lock step,
    # and the median is that of the unfolded windows, not the selection network. That
    # schedule, run here on the cpu, must give the cpu schedule's answers to the bit.
    _, fov, att, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=12)
    masks = random_masks(seed=12)

    def answers():
        shifts, score = _torch.estimate_shift(T(att, "cpu"), T(att[0], "cpu"), weight=T(weight, "cpu"))
        kept = _torch.components_touching(T(masks[0], "cpu"), T(masks[1], "cpu"))
        ties = T(np.round(att * 4) / 4, "cpu")  # (few levels: many ties in each window)
        medians = [_torch.median(images, size_px=size) for images in (T(att, "cpu"), ties) for size in (3, 5)]
        return shifts, score, kept, _torch.largest_component_px(T(masks, "cpu")), *medians

    on_host = answers()
    monkeypatch.setattr(_torch, "_ECC_CHECK_EVERY", {})
    monkeypatch.setattr(_torch, "_ROUNDS_PER_CHECK", {})
    monkeypatch.setattr(_torch, "_MEDIAN_BY_NETWORK", {})
    for a, b in zip(answers(), on_host, strict=True):
        assert torch.equal(a, b)


# -- the kernels chained as the engine chains them ---------------------------------------


def chained(k, frames, fov, weight, time_s, to):
    """Attenuation -> registration -> alignment -> denoising -> subtraction -> cement, on one backend."""
    att = k.mask_field(k.attenuation(to(frames), white_level=4095.0), to(fov), fill=0.0)
    shifts, _ = k.estimate_shift(att, att[0], weight=to(weight))
    aligned = k.shift_images(att, -shifts, order=3)
    baseline = aligned[:5].mean(0)
    filtered = k.recursive_filter(k.smooth(k.median(aligned, size_px=3), sigma_px=1.0) - baseline, alpha=0.5)
    candidates = k.cement_candidates(filtered, threshold=0.05, exclude=to(~fov))
    rows, cols = fov.shape
    state = dict(
        run_length=to(np.zeros((rows, cols), np.int16)),
        run_start_s=to(np.zeros((rows, cols), np.float32)),
        accumulated=to(np.zeros((rows, cols), bool)),
        time_of_arrival_s=to(np.full((rows, cols), np.nan, np.float32)),
    )
    cement = k.accumulate_cement(candidates, time_s=to(time_s), min_run=2, **state)
    return cement, k.largest_component_px(cement)


def test_the_chained_kernels_agree(device):
    frames, fov, _, _ = phantom()
    weight = ndi.binary_erosion(fov, iterations=12)
    time_s = np.arange(len(frames), dtype=np.float32) * 0.2
    cement, largest = chained(_numpy, frames, fov, weight, time_s, np.asarray)
    out_cement, out_largest = chained(_torch, frames, fov, weight, time_s, lambda a: T(a, device))
    out_cement = host(out_cement)
    assert cement[-1].sum() > 50  # cement was found
    # Masks end many float steps away from the input: the Dice >= 0.99 per frame;
    # on torch CPU they are equal.
    for ours, theirs in zip(out_cement, cement):
        dice = 2 * (ours & theirs).sum() / max(ours.sum() + theirs.sum(), 1)
        assert dice >= 0.99 or not theirs.any() and not ours.any()
    np.testing.assert_allclose(host(out_largest), largest, rtol=0.01)


@pytest.mark.parametrize(
    ("brightest", "top"), [(1000.0, 1023.0), (4095.0, 4095.0), (4096.0, 8191.0), (0.4, 1.0), (None, 1.0)]
)
def test_stored_range_top_by_hand_on_both_backends(device, brightest, top):
    image = np.full((4, 5), 7.0, np.float32)
    image[0, 0] = 65535.0  # outside the field: not counted
    fov = np.zeros((4, 5), bool)
    if brightest is not None:  # (None: an empty field)
        fov[1:, 1:] = True
        image[2, 3] = brightest
        image[1:, 1:] = np.minimum(image[1:, 1:], brightest)
    assert _numpy.stored_range_top(image, fov) == top
    assert _torch.stored_range_top(T(image, device), T(fov, device)) == top
