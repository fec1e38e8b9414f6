"""The torch backend of :mod:`vpimage.kernels`: the numpy kernels, batched on tensors.

Every public name of :mod:`vpimage.kernels._numpy` is here with the same signature and
the same meaning (see the docstrings there for units and the physics); this module only
says where the torch version differs. Frames are tensors ``[frames, rows, cols]``; the
work runs on the device of the first tensor argument, in float32, and other array
arguments (numpy arrays included) are moved there. Per-frame statistics that numpy
returns as float64 are float32 tensors here.

The OpenCV steps of the numpy backend are reproduced as OpenCV 5 computes them (border
rules, kernel sizes, rounding of coordinates), so the two backends agree to float32
rounding; ``tests/kernels/test_backend_parity.py`` states the tolerances.

Host round trips: none in the pixel kernels (scalars enter as Python numbers or 0-d cpu
tensors, which CUDA kernels take as arguments without a copy; host arrays given to a
kernel on a CUDA device are copied there, so pass device arrays, see :func:`to_device`).
Some kernels wait on the device by their nature, and say so: :func:`registration_window`
(rejects an empty ``weight``; :func:`estimate_shift` calls it unless given the window),
:func:`estimate_shift` (whether all frames have converged, every few ECC iterations),
the connected-component kernels (label propagation checks for its fixed point every few
rounds) and :func:`label_components` (the number of components sizes the output).

Not intended to be imported directly: use :func:`vpimage.kernels.get_backend`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "accumulate_cement",
    "attenuation",
    "binary_dilation",
    "binary_erosion",
    "block_mean",
    "cement_candidates",
    "clipped_fraction",
    "component_hits",
    "component_mask",
    "components",
    "components_touching",
    "contrast_gain",
    "copy",
    "estimate_scale",
    "estimate_shift",
    "exposure_offset",
    "gradient_magnitude",
    "is_available",
    "label_components",
    "largest_component_px",
    "mask_field",
    "mean_frames",
    "median",
    "needle_mask",
    "pixel_noise",
    "recursive_filter",
    "registration_reference",
    "registration_window",
    "shift_images",
    "smooth",
    "stored_range_top",
    "to_device",
    "to_host",
]

REQUIRES: tuple[str, ...] = ("torch>=2.3",)

_MIN_TORCH = (2, 3)


def is_available() -> bool:
    """True when the installed torch is recent enough (see ``REQUIRES``)."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return (major, minor) >= _MIN_TORCH


def cuda_available() -> bool:
    """True when torch sees a CUDA device (the registry asks before giving ``device="cuda"``)."""
    return torch.cuda.is_available()


def _check_ndim(array: torch.Tensor, ndims: tuple[int, ...], name: str) -> None:
    if array.ndim not in ndims:
        shapes = " or ".join({2: "[rows, cols]", 3: "[frames, rows, cols]"}[n] for n in ndims)
        raise ValueError(f"`{name}` must be shaped {shapes}; got shape {tuple(array.shape)}.")


def _check_image_shape(frames: torch.Tensor, mask, name: str) -> None:
    if tuple(mask.shape) != tuple(frames.shape[-2:]):
        raise ValueError(f"`{name}` must be shaped {tuple(frames.shape[-2:])}; got {tuple(mask.shape)}.")


def _on(array, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``array`` as a tensor on the device of ``like`` (no copy when it already is one)."""
    return torch.as_tensor(array, device=like.device, dtype=dtype)


def _f32(array) -> torch.Tensor:
    return torch.as_tensor(array).to(torch.float32)


# -- where arrays live -------------------------------------------------------------------


def to_device(array, *, device: str = "cpu") -> torch.Tensor:
    """Host data as a tensor on ``device``; see ``_numpy.to_device``.

    To a CUDA device the data goes through pinned (page-locked) host memory with a
    non-blocking copy: the call returns at once and the copy overlaps the work already
    queued; kernels queued after it on the same stream see the data.
    """
    tensor, target = torch.as_tensor(array), torch.device(device)
    if tensor.device.type != "cpu" or target.type == "cpu":  # already off the host, or staying there
        return tensor.to(target)
    return tensor.pin_memory().to(target, non_blocking=True)


def to_host(array) -> np.ndarray:
    """A tensor as a host numpy array (waits for the work that produces it); see ``_numpy.to_host``."""
    return torch.as_tensor(array).cpu().numpy()


# -- pointwise ---------------------------------------------------------------------------


def stored_range_top(image: torch.Tensor, fov_mask: torch.Tensor) -> float:
    """The top of the stored pixel range inside the field; see ``_numpy.stored_range_top``.

    Returns a Python float (one read of the brightest value on the host).
    """
    values = image[torch.as_tensor(fov_mask, device=image.device).to(torch.bool)]
    top = float(values.max()) if values.numel() else 1.0
    return float(2 ** max(math.ceil(math.log2(max(top, 1.0) + 1.0)), 1) - 1)


def attenuation(frames: torch.Tensor, *, white_level: float, log_range: float = 0.0) -> torch.Tensor:
    """Pixel values to attenuation ``-ln(I / I0)``; see ``_numpy.attenuation``.

    Returns a float32 tensor of the shape of ``frames``.
    """
    if white_level <= 0 or log_range < 0:
        raise ValueError(f"`white_level` must be > 0 and `log_range` >= 0; got {white_level!r}, {log_range!r}.")
    values = _f32(frames)
    if log_range > 0:
        return (white_level - values) * torch.tensor(log_range / white_level, dtype=torch.float32)
    return torch.tensor(math.log(white_level), dtype=torch.float32) - torch.log(
        torch.clamp(values, min=1.0)
    )


def mask_field(frames: torch.Tensor, fov_mask: torch.Tensor, *, fill: float = 0.0) -> torch.Tensor:
    """Set every pixel outside the exposed field to ``fill``; see ``_numpy.mask_field``."""
    _check_ndim(frames, (2, 3), "frames")
    _check_image_shape(frames, fov_mask, "fov_mask")
    return torch.where(_on(fov_mask, frames, torch.bool), frames, fill).to(frames.dtype)


def cement_candidates(
    excess: torch.Tensor,
    *,
    threshold: float,
    threshold_raise: torch.Tensor | None = None,
    raise_gain: float = 1.0,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixels whose excess attenuation is that of cement; see ``_numpy.cement_candidates``."""
    _check_ndim(excess, (2, 3), "excess")
    local = torch.tensor(threshold, dtype=torch.float32)
    if threshold_raise is not None and raise_gain > 0:
        local = local + torch.tensor(raise_gain, dtype=torch.float32) * _on(threshold_raise, excess, torch.float32)
    mask = excess > local
    if exclude is not None:
        mask = mask & ~_on(exclude, excess, torch.bool)
    return mask


def recursive_filter(images: torch.Tensor, *, alpha: float, state: torch.Tensor | None = None) -> torch.Tensor:
    """Temporal recursive filter along the frame axis; see ``_numpy.recursive_filter``.

    Sequential by nature: one small elementwise step per frame.
    """
    _check_ndim(images, (3,), "images")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"`alpha` must be in (0, 1]; got {alpha!r}.")
    images = _f32(images)
    new, old = torch.tensor(alpha, dtype=torch.float32), torch.tensor(1.0 - alpha, dtype=torch.float32)
    out = torch.empty_like(images)
    previous = images[0] if state is None else _on(state, images, torch.float32)
    for t in range(images.shape[0]):
        previous = out[t] = new * images[t] + old * previous
    return out


def accumulate_cement(
    candidates: torch.Tensor,
    *,
    time_s: torch.Tensor,
    run_length: torch.Tensor,
    run_start_s: torch.Tensor,
    accumulated: torch.Tensor,
    time_of_arrival_s: torch.Tensor,
    min_run: int,
) -> torch.Tensor:
    """Monotone accumulation of cement; see ``_numpy.accumulate_cement``.

    The four state tensors are updated in place, as in numpy.
    """
    _check_ndim(candidates, (3,), "candidates")
    if min_run < 1:
        raise ValueError(f"`min_run` must be >= 1; got {min_run!r}.")
    time_s = _on(time_s, candidates, run_start_s.dtype)
    top = torch.iinfo(run_length.dtype).max
    out = torch.empty(candidates.shape, dtype=torch.bool, device=candidates.device)
    for t in range(candidates.shape[0]):
        frame = candidates[t]
        run_start_s.copy_(torch.where(frame & (run_length == 0), time_s[t], run_start_s))
        run_length.copy_(torch.where(frame, torch.clamp(run_length, max=top - 1) + 1, 0))  # saturates, never wraps
        new = (run_length >= min_run) & ~accumulated
        time_of_arrival_s.copy_(torch.where(new, run_start_s, time_of_arrival_s))
        accumulated |= new
        out[t] = accumulated
    return out


# -- per-frame statistics ----------------------------------------------------------------


def clipped_fraction(frames: torch.Tensor, fov_mask: torch.Tensor) -> torch.Tensor:
    """Share of exposed pixels at the frame's extreme value; see ``_numpy.clipped_fraction``.

    Returns a float32 tensor ``[frames]``.
    """
    _check_ndim(frames, (3,), "frames")
    _check_image_shape(frames, fov_mask, "fov_mask")
    inside = _on(fov_mask, frames, torch.bool)
    count = inside.sum()
    lowest = torch.where(inside, frames, torch.inf).amin(dim=(1, 2), keepdim=True)
    highest = torch.where(inside, frames, -torch.inf).amax(dim=(1, 2), keepdim=True)
    low = ((frames == lowest) & inside).sum(dim=(1, 2))
    high = ((frames == highest) & inside).sum(dim=(1, 2))
    fraction = torch.maximum(low, high).to(torch.float32) / count.to(torch.float32)
    return torch.where(count > 0, fraction, torch.ones_like(fraction))


def _box3(images: torch.Tensor) -> torch.Tensor:
    """3 x 3 mean with replicated edges (``cv2.blur``), images ``[frames, rows, cols]``."""
    padded = F.pad(images[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) * torch.tensor(1.0 / 9.0, dtype=torch.float32)


def _masked_median(values: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Median of each row of ``values`` ``[frames, n]`` (or ``[1, n]``) over ``inside`` ``[n]``
    (one set for every row) or ``[frames, n]`` (one per row), as numpy takes it.

    The mean of the two middle values for an even count; NaN where nothing is inside.
    """
    ordered = torch.where(inside, values, torch.inf).sort(dim=-1).values
    ordered = ordered.reshape(-1, ordered.shape[-1])
    count = inside.sum(dim=-1, keepdim=True).reshape(-1, 1).expand(ordered.shape[0], 1)
    lower = ordered.gather(1, ((count - 1) // 2).clamp(min=0))
    upper = ordered.gather(1, (count // 2).clamp(max=ordered.shape[1] - 1))
    middle = (lower[:, 0] + upper[:, 0]) * 0.5
    return torch.where(count[:, 0] > 0, middle, torch.nan)


def pixel_noise(images: torch.Tensor, *, weight: torch.Tensor, outlier_sigmas: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Robust pixel-noise level of each image, and the share of outliers; see ``_numpy.pixel_noise``.

    Returns two float32 tensors ``[frames]``: the noise, in the units of ``images``, and
    the outlier share, in [0, 1] (both NaN where ``weight`` selects no pixel).
    """
    _check_ndim(images, (3,), "images")
    _check_image_shape(images, weight, "weight")
    if not outlier_sigmas > 0:
        raise ValueError(f"`outlier_sigmas` must be > 0; got {outlier_sigmas!r}.")
    images = _f32(images)
    inside = _on(weight, images, torch.bool)[::2, ::2].reshape(-1)  # every second row and column
    residual = (images - _box3(images))[:, ::2, ::2].reshape(images.shape[0], inside.numel())
    deviation = (residual - _masked_median(residual, inside)[:, None]).abs()
    spread = _masked_median(deviation, inside) * 1.4826  # the residual's standard deviation
    outliers = ((deviation > outlier_sigmas * spread[:, None]) & inside).sum(dim=1)
    return spread / math.sqrt(8.0 / 9.0), outliers / inside.sum()


def exposure_offset(images: torch.Tensor, reference: torch.Tensor, *, weight: torch.Tensor) -> torch.Tensor:
    """How much each registered image reads more attenuating than ``reference`` as a whole;
    see ``_numpy.exposure_offset``.

    Returns a float32 tensor ``[frames]``, in the units of ``images`` (NaN when ``weight``
    selects no pixel; no host check, so no device wait).
    """
    _check_ndim(images, (3,), "images")
    _check_image_shape(images, reference, "reference")
    _check_image_shape(images, weight, "weight")
    images = _f32(images)
    differences = (images - _on(reference, images, torch.float32)).flatten(1)  # (no frame: none)
    return _masked_median(differences, _on(weight, images, torch.bool).reshape(-1))


def contrast_gain(
    images: torch.Tensor, reference: torch.Tensor, *, weight: torch.Tensor, excess_sigmas: float | None = None
) -> torch.Tensor:
    """How many times the contrast of ``reference`` each registered image shows; see
    ``_numpy.contrast_gain``.

    Returns a float32 tensor ``[frames]`` (NaN when ``weight`` selects no pixel or the
    reference is flat over it; no host check, so no device wait).
    """
    _check_ndim(images, (3,), "images")
    _check_image_shape(images, reference, "reference")
    _check_image_shape(images, weight, "weight")
    if excess_sigmas is not None and not excess_sigmas > 0:
        raise ValueError(f"`excess_sigmas` must be > 0; got {excess_sigmas!r}.")
    images = _f32(images)
    inside = _on(weight, images, torch.bool)[::2, ::2].reshape(-1)  # every second row and column
    values = _on(reference, images, torch.float32)[::2, ::2].reshape(1, -1)
    flat = images[:, ::2, ::2].flatten(1)  # (no frame: none)
    gain = _two_group_slopes(flat, values, inside)
    if excess_sigmas is None:
        return gain
    fit = gain[:, None] * values
    residual = flat - fit - _masked_median(flat - fit, inside)[:, None]
    spread = (_masked_median(residual.abs(), inside) * 1.4826)[:, None]
    # (No spread left, or none measured: the first slope stays.)
    kept = inside & ((residual <= excess_sigmas * spread) | ~(spread > 0))
    return torch.where(spread[:, 0] > 0, _two_group_slopes(flat, values, kept), gain)


def _two_group_slopes(flat: torch.Tensor, values: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """The two-group (Wald) slope of each row of ``flat`` ``[frames, n]`` on ``values`` ``[1, n]``
    over ``inside`` (``[n]``, or ``[frames, n]``: one set per row), split at the median of
    ``values`` there; see ``_numpy._two_group_slopes``."""
    upper = inside & (values > _masked_median(values, inside)[:, None])
    lower = inside & ~upper
    span = _masked_median(values, upper) - _masked_median(values, lower)
    return (_masked_median(flat, upper) - _masked_median(flat, lower)) / span


def copy(array: torch.Tensor) -> torch.Tensor:
    """A new tensor with the values of ``array``, on its device; see ``_numpy.copy``."""
    return torch.as_tensor(array).clone()


# -- morphology and differences ----------------------------------------------------------


def _cross_step(masks: torch.Tensor, *, dilate: bool) -> torch.Tensor:
    """One dilation (or erosion) of ``[n, rows, cols]`` bool masks by the 3 x 3 cross; False beyond the edge."""
    padded = F.pad(masks.to(torch.uint8), (1, 1, 1, 1), value=0).to(torch.bool)
    rows, cols = masks.shape[-2:]
    neighbours = (padded[:, :-2, 1:-1], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2], padded[:, 1:-1, 2:])
    out = masks
    for neighbour in neighbours:
        out = (out | neighbour) if dilate else (out & neighbour)
    return out


def _morph_masks(masks: torch.Tensor, iterations: int, *, dilate: bool) -> torch.Tensor:
    _check_ndim(masks, (2, 3), "masks")
    if iterations < 1:
        raise ValueError(f"`iterations` must be >= 1; got {iterations!r}.")
    masks = torch.as_tensor(masks).to(torch.bool)
    out = masks.reshape((-1,) + tuple(masks.shape[-2:]))
    for _ in range(iterations):
        out = _cross_step(out, dilate=dilate)
    return out.reshape(masks.shape)


def binary_dilation(masks: torch.Tensor, *, iterations: int = 1) -> torch.Tensor:
    """Dilate each mask by the 3 x 3 cross ``iterations`` times; see ``_numpy.binary_dilation``."""
    return _morph_masks(masks, iterations, dilate=True)


def binary_erosion(masks: torch.Tensor, *, iterations: int = 1) -> torch.Tensor:
    """Erode each mask by the 3 x 3 cross ``iterations`` times (False beyond the edge); see ``_numpy.binary_erosion``."""
    return _morph_masks(masks, iterations, dilate=False)


def _difference(images: torch.Tensor, dim: int) -> torch.Tensor:
    """``numpy.gradient`` along ``dim``: central inside, one-sided at both ends (unit spacing)."""
    size = images.shape[dim]
    ahead, behind = images.narrow(dim, 2, size - 2), images.narrow(dim, 0, size - 2)
    first = images.narrow(dim, 1, 1) - images.narrow(dim, 0, 1)
    last = images.narrow(dim, size - 1, 1) - images.narrow(dim, size - 2, 1)
    return torch.cat([first, (ahead - behind) / 2.0, last], dim=dim)


def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Length of the spatial gradient of each image; see ``_numpy.gradient_magnitude``."""
    _check_ndim(images, (2, 3), "images")
    images = _f32(images)
    return torch.hypot(_difference(images, images.ndim - 2), _difference(images, images.ndim - 1))


def mean_frames(images) -> torch.Tensor:
    """Pixel-wise mean over the frames of ``[frames, rows, cols]`` or a sequence of images; see ``_numpy.mean_frames``."""
    if isinstance(images, torch.Tensor):
        stack = _f32(images)
    else:  # on the device of the first tensor among them (numpy arrays join it)
        device = next((image.device for image in images if isinstance(image, torch.Tensor)), None)
        stack = torch.stack([torch.as_tensor(image, dtype=torch.float32, device=device) for image in images])
    _check_ndim(stack, (3,), "images")
    if stack.shape[0] == 0:
        raise ValueError("`images` must hold at least one frame.")
    return stack.mean(dim=0)


# -- spatial filters ---------------------------------------------------------------------


# Devices where the median is a selection network (one cpu thread runs it 6-20x faster than
# the median of the unfolded windows); elsewhere the windows' median, a few launches where
# the network issues a hundred or more (on CUDA each a launch the host pays for).
_MEDIAN_BY_NETWORK = {"cpu": True}


def median(images: torch.Tensor, *, size_px: int) -> torch.Tensor:
    """Median filter of each image (edges replicated, as ``cv2.medianBlur``); see ``_numpy.median``.

    On the cpu a selection network on the window's shifted views (:data:`_MEDIAN_NETWORKS`):
    only element-wise ``minimum``/``maximum`` of frame-sized tensors, with no
    ``[rows, cols, size_px**2]`` copy of the windows. Elsewhere ``torch.median`` of the
    unfolded windows. Both are exact (the median is one of the values, as OpenCV's), so
    they agree to the bit.
    """
    _check_ndim(images, (2, 3), "images")
    if size_px not in (1, 3, 5):
        raise ValueError(f"`size_px` must be 1, 3 or 5; got {size_px!r}.")
    images = _f32(images)
    if size_px == 1:
        return images.clone()
    half = size_px // 2
    rows, cols = images.shape[-2:]
    padded = F.pad(images.reshape((-1, 1, rows, cols)), (half, half, half, half), mode="replicate")
    if not _MEDIAN_BY_NETWORK.get(images.device.type, False):
        return F.unfold(padded, size_px).median(dim=1).values.reshape(images.shape)
    padded = padded[:, 0]
    values = [padded[:, dy : dy + rows, dx : dx + cols] for dy in range(size_px) for dx in range(size_px)]
    for low, high, keep_low, keep_high in _MEDIAN_NETWORKS[size_px]:
        a, b = values[low], values[high]
        if keep_low:
            values[low] = torch.minimum(a, b)
        if keep_high:
            values[high] = torch.maximum(a, b)
    return values[len(values) // 2].reshape(images.shape)


def _odd_even_merge_sort(count: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort of ``count`` values: comparators ``(low, high)``, in order.

    Built for the next power of two; comparators that reach past ``count`` are dropped
    (the missing values stand for +inf, which a comparator never moves).
    """

    def merge(lo: int, hi: int, step: int):
        double = step * 2
        if double < hi - lo:
            yield from merge(lo, hi, double)
            yield from merge(lo + step, hi, double)
            yield from ((i, i + step) for i in range(lo + step, hi - step, double))
        else:
            yield lo, lo + step

    def sort(lo: int, hi: int):
        if hi > lo:
            middle = (lo + hi) // 2
            yield from sort(lo, middle)
            yield from sort(middle + 1, hi)
            yield from merge(lo, hi, 1)

    size = 1 << (count - 1).bit_length()
    return [(low, high) for low, high in sort(0, size - 1) if high < count]


def _median_network(count: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators of :func:`_odd_even_merge_sort` that the middle value depends on.

    ``(low, high, keep_low, keep_high)``: whether the minimum (to ``low``) and the maximum
    (to ``high``) are read later. Pruned backward from position ``count // 2``.
    """
    needed, kept = {count // 2}, []
    for low, high in reversed(_odd_even_merge_sort(count)):
        keep_low, keep_high = low in needed, high in needed
        if keep_low or keep_high:
            kept.append((low, high, keep_low, keep_high))
            needed |= {low, high}
    return tuple(reversed(kept))


# The median's selection networks, per window side (px): 3 x 3 and 5 x 5 windows.
_MEDIAN_NETWORKS = {side: _median_network(side * side) for side in (3, 5)}


def _gaussian_taps(sigma_px: float) -> list[float]:
    """The 1-D kernel ``cv2.GaussianBlur`` builds for a float image and ``ksize`` (0, 0)."""
    size = int(round(sigma_px * 4 * 2 + 1)) | 1  # cvRound(sigma * 4 * 2 + 1) | 1 for CV_32F
    centre = (size - 1) / 2
    taps = [math.exp(-((i - centre) ** 2) / (2 * sigma_px**2)) for i in range(size)]
    total = sum(taps)
    return [tap / total for tap in taps]


def _correlate_rows_cols(images: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable correlation of ``[n, rows, cols]`` with ``taps`` along both axes, edges replicated.

    Written as a sum of shifted slices, not a convolution, so no TF32 or algorithm choice
    on a GPU changes the float32 result.
    """
    half = len(taps) // 2
    weights = torch.tensor(taps, dtype=torch.float32)
    padded = F.pad(images[:, None], (0, 0, half, half), mode="replicate")[:, 0]
    rows = images.shape[-2]
    vertical = sum(weights[k] * padded[:, k : k + rows] for k in range(len(taps)))
    padded = F.pad(vertical[:, None], (half, half, 0, 0), mode="replicate")[:, 0]
    cols = images.shape[-1]
    return sum(weights[k] * padded[:, :, k : k + cols] for k in range(len(taps)))


def smooth(images: torch.Tensor, *, sigma_px: float) -> torch.Tensor:
    """Gaussian blur of each image (edges replicated); see ``_numpy.smooth``."""
    _check_ndim(images, (2, 3), "images")
    images = _f32(images)
    if sigma_px <= 0:
        return images.clone()
    taps = _gaussian_taps(sigma_px)
    if len(taps) == 1:
        return images.clone()
    stack = images.reshape((-1,) + tuple(images.shape[-2:]))
    return _correlate_rows_cols(stack, taps).reshape(images.shape)


def _ellipse_rows(size: int) -> list[tuple[int, int, int]]:
    """Rows of ``cv2.getStructuringElement(MORPH_ELLIPSE, (size, size))`` as ``(row, first, end)``."""
    r = c = size // 2
    rows = []
    for i in range(size):
        dy = i - r
        if abs(dy) <= r:
            dx = int(round(c * math.sqrt((r * r - dy * dy) / (r * r)))) if r else 0
            first, end = max(c - dx, 0), min(c + dx + 1, size)
            if end > first:
                rows.append((i, first, end))
    return rows


def _morph(image: torch.Tensor, size: int, *, dilate: bool) -> torch.Tensor:
    """Grey erosion or dilation of ``[rows, cols]`` by the ellipse; pixels off the image ignored."""
    r = c = size // 2
    sign = 1.0 if dilate else -1.0  # erosion is a dilation of the negated image
    padded = F.pad((sign * image)[None, None], (c, c, r, r), value=-torch.inf)
    rows, cols = image.shape
    out = None
    for i, first, end in _ellipse_rows(size):
        run = F.max_pool2d(padded[:, :, i : i + rows], (1, end - first), stride=1)[0, 0, :, first : first + cols]
        out = run if out is None else torch.maximum(out, run)
    return sign * out


def needle_mask(reference: torch.Tensor, *, min_excess: float, background_px: int = 15) -> torch.Tensor:
    """Where the steel needle lies (elliptical top-hat); see ``_numpy.needle_mask``."""
    _check_ndim(reference, (2,), "reference")
    reference = _f32(reference)
    opened = _morph(_morph(reference, background_px, dilate=False), background_px, dilate=True)
    return (reference - opened) > min_excess


# -- translation -------------------------------------------------------------------------

_CUBIC_A = -0.75  # OpenCV's bicubic (Keys) coefficient


def _taps(positions: torch.Tensor, offset: torch.Tensor, order: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Source indices and weights along one axis for ``order`` 0, 1 or 3 interpolation.

    The points are ``positions + offset`` (``[1, size]`` and ``[frames, 1]``). Nearest
    neighbour rounds each point as ``cv2.warpAffine`` does; bilinear and bicubic take the
    offset's fraction of a pixel exactly, the same at every position (as the numpy
    backend's separable filter).
    """
    if order == 0:
        points = positions + offset
        return [(torch.round(points).to(torch.int64), torch.ones_like(points))]  # half to even, as cvRound
    whole = torch.floor(offset)
    f = (offset - whole).expand(-1, positions.shape[1])
    base = (positions + whole).to(torch.int64)
    if order == 1:
        return [(base, 1.0 - f), (base + 1, f)]
    a = _CUBIC_A
    w0 = ((a * (f + 1) - 5 * a) * (f + 1) + 8 * a) * (f + 1) - 4 * a
    w1 = ((a + 2) * f - (a + 3)) * f * f + 1
    w2 = ((a + 2) * (1 - f) - (a + 3)) * (1 - f) * (1 - f) + 1
    return [(base - 1, w0), (base, w1), (base + 1, w2), (base + 2, 1 - w0 - w1 - w2)]


def _translate(images: torch.Tensor, offset: torch.Tensor, order: int, *, replicate: bool) -> torch.Tensor:
    """``out[b, r, c] = images[b, r + offset[b, 0], c + offset[b, 1]]``, interpolated.

    ``images`` ``[frames, rows, cols]``, ``offset`` float32 ``[frames, 2]`` px. Off the image
    the edge is replicated, or the value is 0 (``replicate`` False), as OpenCV's
    BORDER_REPLICATE / BORDER_CONSTANT. A translation is separable: one pass along the
    rows, one along the columns, each a weighted sum of gathered taps.
    """
    frames, rows, cols = images.shape
    device = images.device
    out = images.to(torch.float32)
    for dim, size in ((1, rows), (2, cols)):
        positions = torch.arange(size, device=device, dtype=torch.float32)[None]
        shape = (frames, size, 1) if dim == 1 else (frames, 1, size)
        passed = None
        for index, weight in _taps(positions, offset[:, dim - 1 : dim], order):
            if not replicate:
                weight = weight * ((index >= 0) & (index < size))
            gathered = out.gather(dim, index.clamp(0, size - 1).reshape(shape).expand(out.shape))
            term = weight.reshape(shape) * gathered
            passed = term if passed is None else passed + term
        out = passed
    return out


def shift_images(images: torch.Tensor, shifts: torch.Tensor, *, order: int = 1) -> torch.Tensor:
    """Translate each image by its ``(dy, dx)`` shift; see ``_numpy.shift_images``.

    As ``cv2.warpAffine``: float images with replicated edges, bool masks nearest
    neighbour with 0 outside.
    """
    _check_ndim(images, (3,), "images")
    shifts = _on(shifts, images, torch.float32).reshape(images.shape[0], 2)
    is_mask = images.dtype == torch.bool
    if order not in (0, 1, 3):
        raise ValueError(f"`order` must be 0, 1 or 3; got {order!r}.")
    out = _translate(images, -shifts, 0 if is_mask else order, replicate=not is_mask)
    return out > 0.5 if is_mask else out


# -- registration ------------------------------------------------------------------------


def block_mean(images: torch.Tensor, *, factor: int) -> torch.Tensor:
    """Each image decimated by ``factor`` (means of ``factor`` x ``factor`` blocks); see ``_numpy.block_mean``.

    ``avg_pool2d`` with the block as kernel and stride (rows and columns past the last
    whole block are left out, as there).
    """
    _check_ndim(images, (2, 3), "images")
    rows, cols = (n // factor if factor >= 1 else 0 for n in images.shape[-2:])
    if not isinstance(factor, (int, np.integer)) or factor < 1 or rows < 1 or cols < 1:
        raise ValueError(f"`factor` must be a whole number from 1 to the image's sides; got {factor!r}.")
    images = _f32(images)
    if factor == 1:
        return images.clone()
    stack = images.reshape((-1, 1) + tuple(images.shape[-2:]))
    return F.avg_pool2d(stack, int(factor)).reshape(tuple(images.shape[:-2]) + (rows, cols))


def registration_window(weight: torch.Tensor, *, taper_px: float = 16.0) -> torch.Tensor:
    """The window of the coarse registration step; see ``_numpy.registration_window``.

    One host check (that ``weight`` selects a pixel): compute it once per study. The
    Euclidean distance to the nearest pixel off ``weight`` (``distance_transform_edt``),
    searched only within ``taper_px`` since farther distances clip to 1: squared distances
    are separable, so two passes of ``2 * ceil(taper) + 1`` shifted minima suffice. Pixels
    beyond the image edge are not "off"; with no pixel off at all, scipy measures from
    the point ``(-1, 0)``, and so does this.
    """
    _check_ndim(weight, (2,), "weight")
    weight = torch.as_tensor(weight).to(torch.bool)
    if not bool(weight.any()):  # a caller error, not a frame's problem
        raise ValueError("`weight` selects no pixel to register on.")
    taper = max(taper_px, 1.0)
    reach = math.ceil(taper)
    rows, cols = weight.shape
    device = weight.device
    outside = ~weight
    # Pass 1, along each row: squared distance to the nearest outside pixel of the row.
    along = torch.full((rows, cols), torch.inf, device=device)
    for k in range(-reach, reach + 1):
        lo, hi = max(0, -k), min(cols, cols - k)
        if hi > lo:
            hit = torch.where(outside[:, lo + k : hi + k], float(k * k), torch.inf)
            along[:, lo:hi] = torch.minimum(along[:, lo:hi], hit)
    # Pass 2, along each column: add the row offset squared.
    squared = along.clone()
    for k in range(-reach, reach + 1):
        lo, hi = max(0, -k), min(rows, rows - k)
        if hi > lo and k:
            squared[lo:hi] = torch.minimum(squared[lo:hi], along[lo + k : hi + k] + float(k * k))
    r = torch.arange(rows, device=device, dtype=torch.float32)[:, None]
    c = torch.arange(cols, device=device, dtype=torch.float32)[None]
    no_outside = (r + 1) ** 2 + c**2
    distance = torch.sqrt(torch.where(outside.any(), squared, no_outside))
    return torch.clamp(distance / taper, 0.0, 1.0)


def _windowed(stack: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Images ``[..., rows, cols]`` less their ``window``-weighted mean, times the window."""
    mean = (stack * window).sum(dim=(-2, -1), keepdim=True) / window.sum()
    return (stack - mean) * window


def _integer_shifts(images: torch.Tensor, window: torch.Tensor, reference_spectrum: torch.Tensor) -> torch.Tensor:
    """Whole-pixel ``(dy, dx)`` of each image, windowed, against the windowed reference whose
    ``reference_spectrum`` (conjugated) is given, float32 ``[frames, 2]``."""
    rows, cols = images.shape[1:]
    spectrum = torch.fft.rfft2(_windowed(images, window)) * reference_spectrum
    peak = torch.fft.irfft2(spectrum, s=(rows, cols)).reshape(images.shape[0], -1).argmax(dim=1)
    dy, dx = peak // cols, peak % cols
    dy, dx = torch.where(dy > rows // 2, dy - rows, dy), torch.where(dx > cols // 2, dx - cols, dx)
    return torch.stack([dy, dx], dim=1).to(torch.float32)


def _gradient(images: torch.Tensor, dim: int) -> torch.Tensor:
    """``cv2.filter2D`` with ``(-0.5, 0, 0.5)`` along ``dim``, edges reflected (BORDER_REFLECT_101)."""
    padded = F.pad(images[:, None], (1, 1, 0, 0) if dim == 2 else (0, 0, 1, 1), mode="reflect")[:, 0]
    ahead = padded.narrow(dim, 2, images.shape[dim])
    behind = padded.narrow(dim, 0, images.shape[dim])
    return 0.5 * ahead - 0.5 * behind


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame sum of ``a * b`` over the pixels, accumulated in float64 as ``cv::Mat::dot``."""
    return (a * b).sum(dim=(1, 2), dtype=torch.float64)


_ECC_ITERATIONS = 50
_ECC_EPS = 1e-4
_ECC_CHECK_EVERY = {"cpu": 1}  # iterations between checks for "all frames converged"; 5 off the host


def _ecc_step(
    template: torch.Tensor, sources: torch.Tensor, mask: torch.Tensor, warp: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One iteration of OpenCV's ECC translation fit for each frame.

    ``template`` float32 ``[rows, cols]``; ``sources`` ``[n, 3, rows, cols]`` (the image and
    its x and y gradients, masked); ``mask`` float32 ``[rows, cols]``; ``warp`` ``(dx, dy)``
    float32 ``[n, 2]``. Returns the correlation at ``warp`` (float64 ``[n]``), the step to
    add to it (float32 ``[n, 2]``), and where OpenCV would abort (NaN, or a step that would
    minimise the correlation; bool ``[n]``).
    """
    n = warp.shape[0]
    rows, cols = sources.shape[-2:]
    offset = warp.flip(1).repeat_interleave(3, dim=0)  # (dy, dx) per source image
    linear = _translate(sources.reshape(-1, rows, cols), offset, 1, replicate=False).reshape(n, 3, rows, cols)
    nearest = _translate(mask.expand(n, -1, -1), warp.flip(1), 0, replicate=False) > 0.5
    warped, warped_x, warped_y = linear[:, 0], linear[:, 1], linear[:, 2]
    inside = nearest.to(torch.float32)
    count = inside.sum(dim=(1, 2), dtype=torch.float64)
    image_mean = _dot(warped, inside) / count
    template_mean = _dot(template, inside) / count
    image_var = (_dot(warped * warped, inside) / count - image_mean**2).clamp(min=0)
    template_var = (_dot(template * template, inside) / count - template_mean**2).clamp(min=0)
    # OpenCV subtracts the mean under the mask only; warped pixels off it keep their value.
    image_zm = torch.where(nearest, warped - image_mean[:, None, None].to(torch.float32), warped)
    template_zm = torch.where(nearest, template - template_mean[:, None, None].to(torch.float32), 0.0)
    template_norm = torch.sqrt(count * template_var)
    image_norm = torch.sqrt(count * image_var)
    gxx, gxy, gyy = _dot(warped_x, warped_x), _dot(warped_x, warped_y), _dot(warped_y, warped_y)
    determinant = gxx * gyy - gxy * gxy
    inverse = torch.stack([gyy, -gxy, -gxy, gxx], dim=1).reshape(n, 2, 2) / determinant[:, None, None]
    correlation = _dot(template_zm, image_zm)
    rho = correlation / (image_norm * template_norm)
    image_projection = torch.stack([_dot(warped_x, image_zm), _dot(warped_y, image_zm)], dim=1)
    template_projection = torch.stack([_dot(warped_x, template_zm), _dot(warped_y, template_zm)], dim=1)
    solved = (inverse @ image_projection[:, :, None])[:, :, 0]
    lambda_n = image_norm**2 - (image_projection * solved).sum(dim=1)
    lambda_d = correlation - (template_projection * solved).sum(dim=1)
    # J . (lambda * template_zm - image_zm), by linearity of the projection.
    error_projection = (lambda_n / lambda_d)[:, None] * template_projection - image_projection
    step = (inverse @ error_projection[:, :, None])[:, :, 0].to(torch.float32)
    return rho, step, torch.isnan(rho) | (lambda_d <= 0)


def _ecc_translation(
    template: torch.Tensor, images: torch.Tensor, mask: torch.Tensor, start: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cv2.findTransformECC(template, image, warp, MOTION_TRANSLATION, (EPS|COUNT, 50, 1e-4), mask, 1)``, batched.

    ``start`` and the result are ``(dx, dy)`` float32 ``[frames, 2]``: the image sampled at
    ``(c + dx, r + dy)`` matches the template at ``(c, r)``. Frames iterate in lock step;
    each stops updating when its own criterion is met, as it would alone. A frame
    OpenCV would abort on (NaN, or a step that would minimise the correlation) keeps
    the warp it had reached and scores 0, as the numpy backend does. On the cpu, where
    the convergence check costs no device wait, each iteration computes only the frames
    still moving; elsewhere all frames, with no wait between checks.
    """
    frames = images.shape[0]
    device = images.device
    mask = mask.to(torch.float32)
    sources = torch.stack([images, _gradient(images, 2) * mask, _gradient(images, 1) * mask], dim=1)
    warp = start.clone()
    rho = torch.full((frames,), -1.0, dtype=torch.float64, device=device)
    last_rho = torch.full((frames,), -_ECC_EPS, dtype=torch.float64, device=device)
    failed = torch.zeros(frames, dtype=torch.bool, device=device)
    check_every = _ECC_CHECK_EVERY.get(device.type, 5)
    for iteration in range(_ECC_ITERATIONS):
        active = ((rho - last_rho).abs() >= _ECC_EPS) & ~failed
        if iteration % check_every == 0 and iteration and not bool(active.any()):
            break
        if check_every == 1 and not bool(active.all()):
            ids = active.nonzero()[:, 0]
            some_rho, some_step, some_aborts = _ecc_step(template, sources[ids], mask, warp[ids])
            new_rho = rho.index_put((ids,), some_rho)
            step = torch.zeros_like(warp).index_put((ids,), some_step)
            aborts = torch.zeros_like(failed).index_put((ids,), some_aborts)
        else:
            new_rho, step, aborts = _ecc_step(template, sources, mask, warp)
        aborts = active & aborts
        moves = active & ~aborts
        failed = failed | aborts
        last_rho = torch.where(active, rho, last_rho)
        rho = torch.where(active, new_rho, rho)
        warp = torch.where(moves[:, None], warp + step, warp)
    score = torch.where(failed, 0.0, rho).to(torch.float32)
    return warp, score


class RegistrationReference(NamedTuple):
    """What :func:`estimate_shift` works out of the reference and the weight alone (see
    :func:`registration_reference`); the fields are the backend's own."""

    window: torch.Tensor  # float32 [rows, cols], the coarse step's window
    spectrum: torch.Tensor  # complex [rows, cols // 2 + 1], conjugated spectrum of the windowed reference
    smoothed: torch.Tensor  # float32 [rows, cols], the reference smoothed for the refinement


def registration_reference(
    reference: torch.Tensor,
    *,
    weight: torch.Tensor,
    taper_px: float = 16.0,
    smooth_px: float = 1.5,
    window: torch.Tensor | None = None,
) -> RegistrationReference:
    """The part of :func:`estimate_shift` that depends on the reference alone; see
    ``_numpy.registration_reference``."""
    _check_ndim(reference, (2,), "reference")
    reference = _f32(reference)
    if tuple(weight.shape) != tuple(reference.shape):
        raise ValueError(f"`weight` must be shaped {tuple(reference.shape)}.")
    weight = _on(weight, reference, torch.bool)
    window = registration_window(weight, taper_px=taper_px) if window is None else _on(window, reference, torch.float32)
    spectrum = torch.conj(torch.fft.rfft2(_windowed(reference, window)))
    return RegistrationReference(window, spectrum, smooth(reference, sigma_px=smooth_px))


def estimate_shift(
    images: torch.Tensor,
    reference: torch.Tensor,
    *,
    weight: torch.Tensor,
    taper_px: float = 16.0,
    smooth_px: float = 1.5,
    window: torch.Tensor | None = None,
    prepared: RegistrationReference | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translation of each image relative to ``reference``; see ``_numpy.estimate_shift``.

    The same two steps, all frames at once: a windowed FFT cross-correlation for the
    whole-pixel start, then OpenCV's ECC translation fit, reproduced in torch. Give
    ``window`` (:func:`registration_window`) to spare its computation and its host check,
    ``prepared`` (:func:`registration_reference`) to spare the reference's part of the work too.

    Returns
    -------
    shifts : Tensor, float32, shape [frames, 2]
        ``(dy, dx)`` in px.
    score : Tensor, float32, shape [frames]
        Correlation coefficient over ``weight``; 0 where the refinement did not converge.
    """
    _check_ndim(images, (3,), "images")
    if tuple(reference.shape) != tuple(images.shape[1:]) or tuple(weight.shape) != tuple(images.shape[1:]):
        raise ValueError(f"`reference` and `weight` must be shaped {tuple(images.shape[1:])}.")
    images = _f32(images)
    weight = _on(weight, images, torch.bool)
    if prepared is None:
        reference = _on(reference, images, torch.float32)
        prepared = registration_reference(reference, weight=weight, taper_px=taper_px, smooth_px=smooth_px, window=window)
    if images.shape[0] == 0:
        return images.new_zeros((0, 2)), images.new_zeros((0,))
    coarse = _integer_shifts(images, prepared.window, prepared.spectrum)
    warp, score = _ecc_translation(prepared.smoothed, smooth(images, sigma_px=smooth_px), weight, coarse.flip(1))
    return warp.flip(1), score


def estimate_scale(
    images: torch.Tensor,
    reference: torch.Tensor,
    *,
    weight: torch.Tensor,
    shifts: torch.Tensor,
    smooth_px: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnification of each image relative to ``reference`` along its rows and columns, and the
    affine fit's score; see ``_numpy.estimate_scale``.

    OpenCV's affine ECC on the host, frame by frame, on host copies (not ported: it is meant
    for the rare frames a translation explains less well than their neighbours, and the
    engine fits those with the numpy kernels); the results come back as float32 tensors on
    the images' device.
    """
    from vpimage.kernels import _numpy

    scales, score = _numpy.estimate_scale(
        to_host(images).astype(np.float32), to_host(reference).astype(np.float32),
        weight=to_host(weight).astype(bool), shifts=to_host(shifts), smooth_px=smooth_px,
    )
    return tuple(torch.as_tensor(a, dtype=torch.float32, device=images.device) for a in (scales, score))


# -- connected components ----------------------------------------------------------------

_EIGHT = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


_ROUNDS_PER_CHECK = {"cpu": 1}  # label propagation rounds between fixed-point checks; 4 off the host


def _component_roots(masks: torch.Tensor) -> torch.Tensor:
    """For each pixel of ``masks`` ``[frames, rows, cols]``, the smallest flat index of its 8-connected component.

    Label propagation with hooking and pointer jumping (each pixel takes the smallest
    label among its 8 neighbours, the root of its label takes it too, then labels follow
    their roots); a host check for the fixed point after every round on the cpu, every
    few rounds elsewhere (rounds past the fixed point change nothing), a few rounds in
    all. Labels only decrease and stay inside their component, and the smallest index of a
    component never changes, so the fixed point is that index. Background pixels hold
    ``masks.numel()``.
    """
    frames, rows, cols = masks.shape
    total = masks.numel()
    dtype = torch.int32 if total < 2**31 - 1 else torch.int64
    flat = torch.where(masks.reshape(-1), torch.arange(total, device=masks.device, dtype=dtype), total)
    labels = torch.cat([flat, torch.full((1,), total, device=masks.device, dtype=dtype)])  # the last: background
    check_every = _ROUNDS_PER_CHECK.get(masks.device.type, 4)
    rounds = 0
    while True:
        previous = labels
        rounds += 1
        pixels = labels[:-1].reshape(masks.shape)
        padded = F.pad(pixels, (1, 1, 1, 1), value=total)
        smallest = pixels
        for dy, dx in _EIGHT:
            smallest = torch.minimum(smallest, padded[:, 1 + dy : 1 + dy + rows, 1 + dx : 1 + dx + cols])
        smallest = torch.where(masks, smallest, total).reshape(-1)
        labels = torch.cat([smallest, labels[-1:]])
        labels.scatter_reduce_(0, previous[:-1].to(torch.int64), smallest, reduce="amin")  # hook the roots
        for _ in range(3):
            labels = labels[labels]  # (indexes as they are, int32 or int64: no copy to int64)
        if rounds % check_every == 0 and torch.equal(labels, previous):
            return labels[:-1].reshape(masks.shape).to(torch.int64)


def label_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of a mask, numbered as OpenCV numbers them; see ``_numpy.label_components``.

    OpenCV's default 8-connected labelling scans 2 x 2 blocks, so components are
    numbered in the order of their first block (block rows, then block columns).

    Returns
    -------
    labels : Tensor, int32, shape [rows, cols]
    areas_px : Tensor, int64, shape [n + 1]
    """
    _check_ndim(mask, (2,), "mask")
    mask = torch.as_tensor(mask).to(torch.bool)
    rows, cols = mask.shape
    total = mask.numel()
    roots = _component_roots(mask[None])[0]
    r = torch.arange(rows, device=mask.device)[:, None]
    c = torch.arange(cols, device=mask.device)[None]
    block_order = (((r // 2) * ((cols + 1) // 2) + c // 2) * 4 + (r % 2) * 2 + c % 2).expand(rows, cols)
    first = torch.full((total + 1,), 4 * total, device=mask.device, dtype=torch.int64)
    first.scatter_reduce_(0, roots.reshape(-1), torch.where(mask, block_order, 4 * total).reshape(-1), reduce="amin")
    keys = torch.where(mask, first[roots], 4 * total)
    order, inverse = torch.unique(keys, return_inverse=True)  # sorted: the background key is last
    has_background = bool((~mask).any())
    n = order.numel() - int(has_background)
    labels = torch.where(mask, inverse + 1, 0).to(torch.int32)
    areas = _counts(labels.to(torch.int64), n + 1)
    return labels, areas


def _counts(indices: torch.Tensor, length: int) -> torch.Tensor:
    """How often each of ``0 .. length - 1`` occurs in the int64 ``indices`` (all below ``length``), int64 ``[length]``.

    ``torch.bincount`` without its device wait: on CUDA it reads the input's extremes back to the host.
    """
    flat = indices.reshape(-1)
    return torch.zeros(length, dtype=torch.int64, device=flat.device).scatter_add_(0, flat, torch.ones_like(flat))


class Components(NamedTuple):
    """The 8-connected components of a mask, labelled once; see ``_numpy.Components``. Here the
    vectors have an entry per pixel, a component's at its root (its smallest flat index), and
    one more for the background."""

    roots: torch.Tensor
    areas: torch.Tensor


def components(mask: torch.Tensor) -> Components:
    """The 8-connected components of a mask; see ``_numpy.components``. No renumbering as
    OpenCV numbers (no sort), unlike :func:`label_components`."""
    _check_ndim(mask, (2,), "mask")
    roots = _component_roots(torch.as_tensor(mask).to(torch.bool)[None])[0]
    areas = _counts(roots, roots.numel() + 1)
    areas[-1] = 0  # the background's entry
    return Components(roots, areas)


def component_hits(parts: Components, where: torch.Tensor) -> torch.Tensor:
    """Pixels of each component in ``where``; see ``_numpy.component_hits``."""
    hits = _on(where, parts.roots, torch.bool).reshape(-1).to(torch.int64)
    out = torch.zeros_like(parts.areas).scatter_add_(0, parts.roots.reshape(-1), hits)
    out[-1] = 0
    return out


def component_mask(parts: Components, keep: torch.Tensor) -> torch.Tensor:
    """The components whose entry of ``keep`` is True, whole; see ``_numpy.component_mask``."""
    keep = keep.clone()
    keep[-1] = False
    return keep[parts.roots]


def components_touching(mask: torch.Tensor, touching: torch.Tensor) -> torch.Tensor:
    """The components of ``mask`` that overlap ``touching``, whole; see ``_numpy.components_touching``."""
    parts = components(mask)
    return component_mask(parts, component_hits(parts, touching) > 0)


def largest_component_px(masks: torch.Tensor) -> torch.Tensor:
    """Pixel count of the largest 8-connected component of each mask, int64 ``[frames]``."""
    _check_ndim(masks, (3,), "masks")
    masks = torch.as_tensor(masks).to(torch.bool)
    total = masks.numel()
    roots = _component_roots(masks).reshape(-1)
    areas = _counts(roots, total + 1)[:total]
    frame_of = torch.arange(total, device=masks.device) // (masks.shape[1] * masks.shape[2])
    largest = torch.zeros(masks.shape[0], dtype=torch.int64, device=masks.device)
    return largest.scatter_reduce_(0, frame_of, areas, reduce="amax")
