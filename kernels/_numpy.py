"""The numpy / scipy / OpenCV backend of :mod:`vpimage.kernels`.

Pure functions on arrays: no I/O, no logging, no global state. Frames are batched as
``[frames, rows, cols]``; images are ``[rows, cols]``; shifts are ``(dy, dx)`` in pixels
(rows, columns), positive down and right. Attenuation is the natural-log line integral
``-ln(I / I0)`` (dimensionless), so a material of attenuation coefficient ``mu`` (1/mm)
and thickness ``t`` (mm) adds ``mu * t``.

Not intended to be imported directly: use :func:`vpimage.kernels.get_backend`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np
from scipy import fft
from scipy import ndimage as ndi

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

REQUIRES: tuple[str, ...] = ("numpy>=1.26", "scipy>=1.11", "opencv-python-headless>=4.8")


def is_available() -> bool:
    """The numpy backend is always available (its requirements are vpimage's own)."""
    return True


def _check_ndim(array: np.ndarray, ndims: tuple[int, ...], name: str) -> None:
    if array.ndim not in ndims:
        shapes = " or ".join({2: "[rows, cols]", 3: "[frames, rows, cols]"}[n] for n in ndims)
        raise ValueError(f"`{name}` must be shaped {shapes}; got shape {array.shape}.")


# -- where arrays live -------------------------------------------------------------------


def to_device(array, *, device: str = "cpu") -> np.ndarray:
    """Host data as an array of this backend on ``device``.

    Parameters
    ----------
    array : array_like
        Host (numpy) data of any shape and dtype.
    device : {"cpu"}, optional
        The numpy backend lives in host memory only.

    Returns
    -------
    ndarray, the same shape and dtype (no copy when ``array`` already is one).
    """
    if device != "cpu":
        raise ValueError(f"the numpy backend runs on the cpu only; got `device` {device!r}.")
    return np.asarray(array)


def to_host(array) -> np.ndarray:
    """An array of this backend as a host numpy array (itself, for numpy)."""
    return np.asarray(array)


def copy(array: np.ndarray) -> np.ndarray:
    """A new array with the values of ``array`` (the same shape and dtype).

    Kept as a copy, one image of a batch holds its own memory only, not the whole batch
    it is a view of.
    """
    return np.array(array, copy=True)


# -- morphology and differences ----------------------------------------------------------

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _morph_masks(masks: np.ndarray, iterations: int, operation) -> np.ndarray:
    _check_ndim(masks, (2, 3), "masks")
    if iterations < 1:
        raise ValueError(f"`iterations` must be >= 1; got {iterations!r}.")
    stack = np.asarray(masks, dtype=np.uint8).reshape((-1,) + masks.shape[-2:])
    out = [operation(m, _CROSS, iterations=iterations, borderType=cv2.BORDER_CONSTANT, borderValue=0) for m in stack]
    return np.asarray(out, dtype=bool).reshape(masks.shape)  # (no frame: none)


def binary_dilation(masks: np.ndarray, *, iterations: int = 1) -> np.ndarray:
    """Dilate each mask by the 3 x 3 cross ``iterations`` times (4-connected growth by 1 px a time).

    Parameters
    ----------
    masks : ndarray of bool, shape [frames, rows, cols] or [rows, cols]
    iterations : int, optional
        Repetitions, >= 1: pixels within this city-block distance (px) of the mask join it.

    Returns
    -------
    ndarray of bool, same shape.

    Notes
    -----
    ``scipy.ndimage.binary_dilation(mask, iterations=n)`` with its default structure,
    computed by ``cv2.dilate`` (equal results, pixels beyond the edge are False).
    """
    return _morph_masks(masks, iterations, cv2.dilate)


def binary_erosion(masks: np.ndarray, *, iterations: int = 1) -> np.ndarray:
    """Erode each mask by the 3 x 3 cross ``iterations`` times; pixels beyond the edge count as False.

    Parameters
    ----------
    masks : ndarray of bool, shape [frames, rows, cols] or [rows, cols]
    iterations : int, optional
        Repetitions, >= 1: pixels within this city-block distance (px) of the outside
        (or of the image edge) leave the mask.

    Returns
    -------
    ndarray of bool, same shape.

    Notes
    -----
    ``scipy.ndimage.binary_erosion(mask, iterations=n)`` (default structure and
    ``border_value=0``), computed by ``cv2.erode`` with a constant 0 border.
    """
    return _morph_masks(masks, iterations, cv2.erode)


def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """Length of the spatial gradient of each image, ``hypot(d/drow, d/dcol)``.

    Central differences inside, one-sided differences on the first and last row and
    column (``numpy.gradient`` along the two image axes).

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols] or [rows, cols]
        At least 2 rows and 2 columns.

    Returns
    -------
    ndarray, float32, same shape; units of ``images`` per px.
    """
    _check_ndim(images, (2, 3), "images")
    images = np.asarray(images, dtype=np.float32)
    gy, gx = np.gradient(images, axis=(-2, -1))
    return np.hypot(gy, gx).astype(np.float32, copy=False)


def mean_frames(images) -> np.ndarray:
    """Pixel-wise mean over the frames.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols], or a sequence of [rows, cols] arrays
        At least one frame.

    Returns
    -------
    ndarray, float32, shape [rows, cols].
    """
    stack = np.asarray(images, dtype=np.float32)
    _check_ndim(stack, (3,), "images")
    if stack.shape[0] == 0:
        raise ValueError("`images` must hold at least one frame.")
    return np.mean(stack, axis=0).astype(np.float32, copy=False)


def stored_range_top(image: np.ndarray, fov_mask: np.ndarray) -> float:
    """The top of the stored pixel range, ``2**k - 1`` for the smallest ``k`` (at least 1)
    that holds the brightest pixel of ``image`` inside ``fov_mask``: the white level of a
    log-encoded display when the file does not say (see :func:`attenuation`).

    Parameters
    ----------
    image : array, shape [rows, cols]
        Pixel values oriented like MONOCHROME2.
    fov_mask : array of bool, shape [rows, cols]
        The exposed field.

    Returns
    -------
    float
        1.0 for an empty field.
    """
    values = np.asarray(image)[np.asarray(fov_mask, dtype=bool)]
    top = float(values.max()) if values.size else 1.0
    return float(2 ** max(math.ceil(math.log2(max(top, 1.0) + 1.0)), 1) - 1)


def attenuation(frames: np.ndarray, *, white_level: float, log_range: float = 0.0) -> np.ndarray:
    """Pixel values (higher = brighter) to attenuation, the line integral ``-ln(I / I0)``.

    Two display encodings are understood: linear in the detected intensity
    (``log_range`` 0: ``-ln(max(v, 1) / white_level)``, a value of 0 read as 1 so that no
    ``log(0)`` is taken), and logarithmic, as most fluoroscopy systems store frames, where
    the stored range ``[0, white_level]`` spans ``log_range`` units of attenuation
    (``(white_level - v) / white_level * log_range``).

    Parameters
    ----------
    frames : ndarray, shape [frames, rows, cols] or [rows, cols]
        Pixel values oriented like MONOCHROME2 (higher = more light reached the detector).
    white_level : float
        The value of an unattenuated pixel (linear) or the top of the stored range (log).
    log_range : float, optional
        Attenuation across the stored range of a log-encoded display; 0 for linear.

    Returns
    -------
    ndarray, float32, same shape
        0 for no attenuation (white), larger for denser paths.
    """
    if white_level <= 0 or log_range < 0:
        raise ValueError(f"`white_level` must be > 0 and `log_range` >= 0; got {white_level!r}, {log_range!r}.")
    values = np.asarray(frames, dtype=np.float32)
    if log_range > 0:
        return ((np.float32(white_level) - values) * np.float32(log_range / white_level)).astype(np.float32, copy=False)
    values = np.maximum(values, np.float32(1.0))
    return (np.float32(np.log(white_level)) - np.log(values)).astype(np.float32, copy=False)


def mask_field(frames: np.ndarray, fov_mask: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Set every pixel outside the exposed field to ``fill``.

    Parameters
    ----------
    frames : ndarray, shape [frames, rows, cols] or [rows, cols]
    fov_mask : ndarray of bool, shape [rows, cols]
        True where the field is exposed.
    fill : float, optional

    Returns
    -------
    ndarray, same shape and dtype as ``frames`` (a new array).
    """
    _check_ndim(frames, (2, 3), "frames")
    if fov_mask.shape != frames.shape[-2:]:
        raise ValueError(f"`fov_mask` must be shaped {frames.shape[-2:]}; got {fov_mask.shape}.")
    out = np.array(frames, copy=True)
    np.copyto(out, np.asarray(fill, dtype=out.dtype), where=~np.asarray(fov_mask, dtype=bool))  # 2x np.where's speed
    return out


_MIN_MAX_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64))


def clipped_fraction(frames: np.ndarray, fov_mask: np.ndarray) -> np.ndarray:
    """Fraction of the exposed pixels of each frame stuck at that frame's lowest or highest value.

    A frame clipped black (no exposure) or white (saturated) has a large share of its
    pixels at one extreme value; a noisy exposed frame almost none.

    Parameters
    ----------
    frames : ndarray, shape [frames, rows, cols]
    fov_mask : ndarray of bool, shape [rows, cols]

    Returns
    -------
    ndarray, float64, shape [frames], in [0, 1].
    """
    _check_ndim(frames, (3,), "frames")
    exposed = int(np.count_nonzero(fov_mask))
    if exposed == 0:
        return np.ones(frames.shape[0])
    if frames.dtype not in _MIN_MAX_DTYPES:
        frames = frames.astype(np.float64)
    mask = fov_mask.astype(np.uint8)
    out = np.empty(frames.shape[0])
    for i, frame in enumerate(frames):
        lowest, highest, _, _ = cv2.minMaxLoc(frame, mask)  # extremes over the field, one pass
        low, high = (np.count_nonzero((frame == extreme) & fov_mask) for extreme in (lowest, highest))
        out[i] = max(low, high) / exposed
    return out


def pixel_noise(images: np.ndarray, *, weight: np.ndarray, outlier_sigmas: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Robust pixel-noise level of each image over the ``weight`` pixels, and the share of
    those pixels that stand out of it.

    The noise is the median absolute deviation of the residual after a 3 x 3 mean, scaled
    to a Gaussian standard deviation (1.4826) and for the part of white noise the mean
    keeps (``sqrt(8 / 9)``): smooth anatomy cancels, pixel noise stays. It is taken over
    the ``weight`` pixels of every second row and column: neighbouring residuals share
    most of their 3 x 3 mean, so a quarter of the pixels give the same spread, four times
    faster. The outliers are the residuals farther than ``outlier_sigmas`` of their own
    standard deviations from their median: Gaussian noise has none beyond 10 (a share of
    1e-23), sharp edges (steel, cortex) a few per thousand pixels, and corrupt pixel data
    (bytes out of place, a garbled tile) many.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
    weight : ndarray of bool, shape [rows, cols]
    outlier_sigmas : float, optional
        How far from the median residual an outlier lies, in the residual's standard
        deviations (> 0).

    Returns
    -------
    noise : ndarray, float64, shape [frames]
        Noise standard deviation per pixel, in the units of ``images`` (NaN where ``weight``
        selects no pixel).
    outlier_share : ndarray, float64, shape [frames]
        The share of the sampled ``weight`` pixels that are outliers, in [0, 1] (NaN where
        none is sampled).
    """
    _check_ndim(images, (3,), "images")
    if not outlier_sigmas > 0:
        raise ValueError(f"`outlier_sigmas` must be > 0; got {outlier_sigmas!r}.")
    noise, outlier_share = np.full(images.shape[0], np.nan), np.full(images.shape[0], np.nan)
    # Only the box of the weight and a pixel around it (for the 3 x 3 mean), from an even
    # row and column so the same pixels are sampled as on the whole image.
    rows, cols = np.flatnonzero(weight.any(axis=1)), np.flatnonzero(weight.any(axis=0))
    if rows.size == 0:
        rows = cols = np.zeros(1, np.int64)
    top, left = max(rows[0] - 1, 0) // 2 * 2, max(cols[0] - 1, 0) // 2 * 2
    box = (slice(top, rows[-1] + 2), slice(left, cols[-1] + 2))
    grid = weight[box][::2, ::2]
    if not grid.any():
        return noise, outlier_share
    for i, image in enumerate(np.asarray(images, dtype=np.float32)):
        image = image[box]
        residual = (image[::2, ::2] - cv2.blur(image, (3, 3), borderType=cv2.BORDER_REPLICATE)[::2, ::2])[grid]
        deviation = np.abs(residual - _median(residual))
        spread = 1.4826 * _median(deviation)  # the residual's standard deviation
        noise[i] = spread / np.sqrt(8.0 / 9.0)
        outlier_share[i] = np.count_nonzero(deviation > outlier_sigmas * spread) / deviation.size
    return noise, outlier_share


def _check_on_reference(images: np.ndarray, reference: np.ndarray, weight: np.ndarray) -> None:
    """Images ``[frames, rows, cols]`` to be read against ``reference`` over ``weight``, both ``[rows, cols]``."""
    _check_ndim(images, (3,), "images")
    if reference.shape != images.shape[1:] or weight.shape != images.shape[1:]:
        raise ValueError(f"`reference` and `weight` must be shaped {images.shape[1:]}.")


def exposure_offset(images: np.ndarray, reference: np.ndarray, *, weight: np.ndarray) -> np.ndarray:
    """How much each registered image reads more attenuating than ``reference`` as a whole.

    The median of ``images - reference`` over the ``weight`` pixels (bone that does not
    take cement). A change of tube output by a factor ``g`` (automatic exposure control,
    pulse-to-pulse variation) moves every pixel of a log-domain image by ``-ln g``;
    uncorrected, a frame with 5 % less output would read as 0.05 of excess attenuation
    everywhere. The median is robust to the few pixels cement or a residual edge takes.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
        Attenuation images, registered on ``reference``.
    reference : ndarray, shape [rows, cols]
    weight : ndarray of bool, shape [rows, cols]

    Returns
    -------
    ndarray, float32, shape [frames]
        The offset, in the units of ``images`` (subtract it to read at the reference's
        level); NaN when ``weight`` selects no pixel.
    """
    _check_on_reference(images, reference, weight)
    if not weight.any():
        return np.full(images.shape[0], np.nan, dtype=np.float32)
    differences = np.asarray(images, dtype=np.float32)[:, weight] - np.asarray(reference, dtype=np.float32)[weight]
    return np.array([_median(row) for row in differences], dtype=np.float32)


def contrast_gain(
    images: np.ndarray, reference: np.ndarray, *, weight: np.ndarray, excess_sigmas: float | None = None
) -> np.ndarray:
    """How many times the contrast of ``reference`` each registered image shows.

    A display whose gain changes (a log-encoded frame's values scaled by ``g``, as a change
    of window or of image processing makes) reads ``g`` times every difference of
    attenuation, plus a level; the level, what :func:`exposure_offset` measures, cannot
    tell it, and dense bone left in the subtraction looks like cement. The gain is the
    two-group (Wald) slope of ``images`` on ``reference`` over the ``weight`` pixels (bone
    that does not take cement): the weighted pixels are split at the reference's median,
    and the difference of the images' medians over the two halves is divided by the
    reference's. Medians keep it robust to the few pixels cement or a residual edge takes.
    It is taken over the ``weight`` pixels of every second row and column: a quarter of
    the pixels of the smooth registration grid give the same gain to about 0.01, four
    times faster.

    Cement that lies in one half only (a leak into the soft tissue in front of the body,
    on the little bone collimator blades leave) lifts that half's median alone, and the
    slope with it. With ``excess_sigmas`` each image's slope is measured again without the
    pixels its first fit (slope and level) leaves more than ``excess_sigmas`` robust
    standard deviations (1.4826 x the median absolute residual) more attenuating than it
    predicts: cement only adds attenuation. A first fit that cement tilted widens the
    residuals, so this finds dense cement, not faint (at 5 sigmas, 1.0 of attenuation on
    15 % of a half's pixels is left out, 0.5 on 30 % is not: tests/kernels/test_numpy.py).
    An image whose fit leaves no spread keeps its slope.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
        Attenuation images, registered on ``reference``.
    reference : ndarray, shape [rows, cols]
    weight : ndarray of bool, shape [rows, cols]
    excess_sigmas : float > 0, optional

    Returns
    -------
    ndarray, float32, shape [frames]
        1 for the reference's contrast; NaN when ``weight`` selects no pixel or the
        reference is flat over it (no contrast to compare).
    """
    _check_on_reference(images, reference, weight)
    if excess_sigmas is not None and not excess_sigmas > 0:
        raise ValueError(f"`excess_sigmas` must be > 0; got {excess_sigmas!r}.")
    grid = np.asarray(weight, dtype=bool)[::2, ::2]
    values = np.asarray(reference, dtype=np.float32)[::2, ::2][grid]
    selected = np.asarray(images, dtype=np.float32)[:, ::2, ::2][:, grid]
    gain = _two_group_slopes(selected, values)
    if excess_sigmas is None:
        return gain
    for i, row in enumerate(selected):
        if not np.isfinite(gain[i]):
            continue
        fit = gain[i] * values
        residual = row - fit - _median(row - fit)
        spread = np.float32(1.4826) * _median(np.abs(residual))
        if spread > 0:
            kept = residual <= np.float32(excess_sigmas) * spread
            gain[i] = _two_group_slopes(row[kept][None], values[kept])[0]
    return gain


def _two_group_slopes(selected: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The two-group (Wald) slope of each row of ``selected`` ``[frames, n]`` on ``values``
    ``[n]``, split at the median of ``values`` (float32 ``[frames]``; NaN when ``values`` is
    empty or flat)."""
    if values.size == 0:
        return np.full(selected.shape[0], np.nan, dtype=np.float32)
    upper = values > _median(values)
    if not upper.any():
        return np.full(selected.shape[0], np.nan, dtype=np.float32)
    span = _median(values[upper]) - _median(values[~upper])
    rise = [_median(row[upper]) - _median(row[~upper]) for row in selected]
    return (np.array(rise, dtype=np.float32) / np.float32(span)).astype(np.float32)


def _median(values: np.ndarray):
    """``np.median`` of a non-empty 1-D array, the same value from one partition: with an
    even count, the lower middle is the largest value below the upper one."""
    k = values.size // 2
    part = np.partition(values, k)
    if values.size % 2:
        return part[k]
    return (part[:k].max() + part[k]) / part.dtype.type(2)


def _each_image(images: np.ndarray, filter_image) -> np.ndarray:
    """``filter_image(image, out)`` on each ``[rows, cols]`` image, written into one new array of the same shape."""
    stack = images.reshape((-1,) + images.shape[-2:])
    out = np.empty_like(stack)
    for image, target in zip(stack, out):
        filter_image(image, target)
    return out.reshape(images.shape)


def median(images: np.ndarray, *, size_px: int) -> np.ndarray:
    """Median filter of each image: removes noise and keeps the place of steep edges.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols] or [rows, cols]
    size_px : {1, 3, 5}
        Side of the square window, px; 1 returns a float32 copy.

    Returns
    -------
    ndarray, float32, same shape.
    """
    _check_ndim(images, (2, 3), "images")
    if size_px not in (1, 3, 5):
        raise ValueError(f"`size_px` must be 1, 3 or 5; got {size_px!r}.")
    images = np.asarray(images, dtype=np.float32)
    if size_px == 1:
        return images.copy()
    return _each_image(images, lambda image, out: cv2.medianBlur(image, size_px, dst=out))


def smooth(images: np.ndarray, *, sigma_px: float) -> np.ndarray:
    """Gaussian blur of each image (spatial noise reduction).

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols] or [rows, cols]
    sigma_px : float
        Standard deviation of the Gaussian, px; 0 returns a float32 copy.

    Returns
    -------
    ndarray, float32, same shape.
    """
    _check_ndim(images, (2, 3), "images")
    images = np.asarray(images, dtype=np.float32)
    if sigma_px <= 0:
        return images.copy()
    return _each_image(
        images, lambda image, out: cv2.GaussianBlur(image, (0, 0), sigma_px, dst=out, borderType=cv2.BORDER_REPLICATE)
    )


def block_mean(images: np.ndarray, *, factor: int) -> np.ndarray:
    """Each image decimated by ``factor``: the mean of every ``factor`` x ``factor`` block.

    Output pixel ``(i, j)`` is the mean of input rows ``factor * i ... factor * i + factor - 1``
    and the same columns, so its centre lies at input ``(factor * i + (factor - 1) / 2, ...)``:
    a translation of ``d`` output px is one of ``factor * d`` input px. Rows and columns
    past the last whole block are left out.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols] or [rows, cols]
        At least ``factor`` rows and columns.
    factor : int
        Side of the blocks, px (>= 1; 1 returns a float32 copy).

    Returns
    -------
    ndarray, float32, shape [frames, rows // factor, cols // factor] or [rows // factor, cols // factor].

    Notes
    -----
    ``cv2.resize`` with ``INTER_AREA`` at a whole factor (exact block means), halving
    while the factor is even (a mean of means of equal blocks; OpenCV's fastest path).
    """
    _check_ndim(images, (2, 3), "images")
    rows, cols = (n // factor if factor >= 1 else 0 for n in images.shape[-2:])
    if not isinstance(factor, (int, np.integer)) or factor < 1 or rows < 1 or cols < 1:
        raise ValueError(f"`factor` must be a whole number from 1 to the image's sides; got {factor!r}.")
    images = np.asarray(images, dtype=np.float32)
    if factor == 1:
        return images.copy()
    whole = images[..., : rows * factor, : cols * factor]
    stack = whole.reshape((-1,) + whole.shape[-2:])
    out = np.empty((stack.shape[0], rows, cols), np.float32)
    for image, target in zip(stack, out):
        step = factor
        while step % 2 == 0 and step > 2:
            image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
            step //= 2
        cv2.resize(image, (cols, rows), dst=target, interpolation=cv2.INTER_AREA)
    return out.reshape(images.shape[:-2] + (rows, cols))


def registration_window(weight: np.ndarray, *, taper_px: float = 16.0) -> np.ndarray:
    """The window of the coarse registration step: 0 off ``weight``, fading in to 1 over ``taper_px``.

    It depends on ``weight`` alone, so a caller registering a whole study on the same
    pixels computes it once and gives it to :func:`estimate_shift`.

    Parameters
    ----------
    weight : ndarray of bool, shape [rows, cols]
        The pixels registered on; at least one.
    taper_px : float, optional
        Width of the fade-in, px (at least 1).

    Returns
    -------
    ndarray, float32, shape [rows, cols], in [0, 1]: the Euclidean distance to the
    nearest pixel off ``weight`` over ``taper_px``, clipped.

    Raises
    ------
    ValueError
        ``weight`` selects no pixel.

    Notes
    -----
    OpenCV's exact distance transform (``DIST_MASK_PRECISE``: equal to
    ``ndi.distance_transform_edt`` and 5x faster); scipy's where no pixel is off, since
    it then measures from the point ``(-1, 0)``.
    """
    _check_ndim(weight, (2,), "weight")
    if not weight.any():
        raise ValueError("`weight` selects no pixel to register on.")
    if weight.all():
        inside = ndi.distance_transform_edt(weight).astype(np.float32)
    else:
        inside = cv2.distanceTransform(weight.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(inside / np.float32(max(taper_px, 1.0)), 0.0, 1.0)


def _windowed(stack: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Images ``[..., rows, cols]`` less their ``window``-weighted mean, times the window, float32."""
    stack = np.asarray(stack, dtype=np.float32)
    means = np.average(stack.reshape(stack.shape[:-2] + (-1,)), axis=-1, weights=window.ravel())
    return (stack - means[..., None, None].astype(np.float32)) * window


def _integer_shifts(reference_spectrum: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Whole-pixel ``(dy, dx)`` of each windowed image ``[frames, rows, cols]`` against the
    reference whose ``reference_spectrum`` (conjugated) is given, by plain cross-correlation
    (one batched FFT on all cores), int ``[frames, 2]``."""
    rows, cols = images.shape[1:]
    spectra = fft.rfft2(images, workers=-1) * reference_spectrum
    peak = fft.irfft2(spectra, s=(rows, cols), workers=-1).reshape(images.shape[0], -1).argmax(axis=1)
    shifts = np.stack(np.unravel_index(peak, (rows, cols)), axis=1)
    return np.where(shifts > np.array([rows // 2, cols // 2]), shifts - np.array([rows, cols]), shifts)


_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
_ECC_MARGIN_PX = 8  # room for the refinement's own steps (< 1 px from the whole-pixel start) and the bilinear taps


class RegistrationReference(NamedTuple):
    """What :func:`estimate_shift` works out of the reference and the weight alone (see
    :func:`registration_reference`); the fields are the backend's own."""

    window: np.ndarray  # float32 [rows, cols], the coarse step's window
    spectrum: np.ndarray  # complex [rows, cols // 2 + 1], conjugated spectrum of the windowed reference
    smoothed: np.ndarray  # float32 [rows, cols], the reference smoothed for the refinement
    mask: np.ndarray  # uint8 [rows, cols], the weight
    rows: np.ndarray  # int64, the rows holding weight
    cols: np.ndarray  # int64, the columns holding weight


def registration_reference(
    reference: np.ndarray,
    *,
    weight: np.ndarray,
    taper_px: float = 16.0,
    smooth_px: float = 1.5,
    window: np.ndarray | None = None,
) -> RegistrationReference:
    """The part of :func:`estimate_shift` that depends on the reference alone, for a caller that
    registers batch after batch on one reference to compute once and give it as ``prepared``.

    Parameters
    ----------
    reference : ndarray, shape [rows, cols]
    weight, taper_px, smooth_px, window
        As :func:`estimate_shift` is given them.

    Returns
    -------
    RegistrationReference
    """
    _check_ndim(reference, (2,), "reference")
    if weight.shape != reference.shape:
        raise ValueError(f"`weight` must be shaped {reference.shape}.")
    window = registration_window(weight, taper_px=taper_px) if window is None else window
    return RegistrationReference(
        window,
        np.conj(fft.rfft2(_windowed(reference, window))),
        smooth(reference, sigma_px=smooth_px),
        weight.astype(np.uint8),
        np.flatnonzero(weight.any(axis=1)),
        np.flatnonzero(weight.any(axis=0)),
    )


def estimate_shift(
    images: np.ndarray,
    reference: np.ndarray,
    *,
    weight: np.ndarray,
    taper_px: float = 16.0,
    smooth_px: float = 1.5,
    window: np.ndarray | None = None,
    prepared: RegistrationReference | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Translation of each image relative to ``reference``, and how well it explains the image.

    Only the pixels where ``weight`` is True take part (bone inside the exposed field,
    away from the cement), so the edges of the field, which do not move with the
    patient, cannot pull the estimate to zero. A whole-pixel cross-correlation of the
    windowed images gives the start; an enhanced-correlation (ECC) fit of a translation
    over the ``weight`` pixels refines it to a fraction of a pixel.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
        Attenuation images.
    reference : ndarray, shape [rows, cols]
    weight : ndarray of bool, shape [rows, cols]
    taper_px : float, optional
        Width of the window's fade-in at the edge of ``weight`` for the coarse step, px.
    smooth_px : float, optional
        Gaussian pre-smoothing of the refinement (noise), px.
    window : ndarray, float32, shape [rows, cols], optional
        ``registration_window(weight, taper_px=taper_px)`` when the caller keeps it for a
        study (it is computed here otherwise).
    prepared : RegistrationReference, optional
        ``registration_reference(reference, weight=weight, taper_px=taper_px,
        smooth_px=smooth_px, window=window)`` when the caller keeps it while the reference
        stays (it is computed here otherwise; ``window`` is then not needed).

    Returns
    -------
    shifts : ndarray, float64, shape [frames, 2]
        ``(dy, dx)`` in px: the content at ``reference`` pixel ``(r, c)`` sits at
        ``(r + dy, c + dx)`` in ``images[i]``.
    score : ndarray, float64, shape [frames]
        Correlation coefficient of the aligned images over ``weight``, in [-1, 1];
        0 when the refinement did not converge. Low means the estimate is not trusted.

    Notes
    -----
    Refinement by ``cv2.findTransformECC`` (``MOTION_TRANSLATION``, with a mask).
    """
    _check_on_reference(images, reference, weight)
    if prepared is None:
        prepared = registration_reference(reference, weight=weight, taper_px=taper_px, smooth_px=smooth_px, window=window)
    shifts = np.zeros((images.shape[0], 2))
    score = np.zeros(images.shape[0])
    if images.shape[0] == 0:
        return shifts, score
    for i, (dy, dx) in enumerate(_integer_shifts(prepared.spectrum, _windowed(images, prepared.window)).tolist()):
        warp = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
        try:
            score[i], warp = _ecc(prepared, images[i], warp, cv2.MOTION_TRANSLATION, smooth_px)
        except cv2.error:  # did not converge: keep the coarse shift, score 0
            score[i] = 0.0
        shifts[i] = warp[1, 2], warp[0, 2]
    return shifts, score


def estimate_scale(
    images: np.ndarray,
    reference: np.ndarray,
    *,
    weight: np.ndarray,
    shifts: np.ndarray,
    smooth_px: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Magnification of each image relative to ``reference``, along its rows and its columns,
    and how well it explains the image: an affine enhanced-correlation (ECC) fit over the
    ``weight`` pixels, started at the translation :func:`estimate_shift` measured.

    A translation is all :func:`estimate_shift` measures. An image magnified about any point (a
    zoom mode, the detector or the table moved) is a translation of that point's surroundings
    and a scale about it; an affine fit measures both, and, unlike a translation, explains
    the magnified image. OpenCV on the host, one frame after the other: meant for the few
    frames a translation explains less well than their neighbours.

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
        Attenuation images.
    reference : ndarray, shape [rows, cols]
    weight : ndarray of bool, shape [rows, cols]
    shifts : ndarray, shape [frames, 2]
        ``(dy, dx)`` px, as :func:`estimate_shift` gives them: where the fit starts.
    smooth_px : float, optional
        Gaussian pre-smoothing (noise), px.

    Returns
    -------
    scales : ndarray, float64, shape [frames, 2]
        The image's size over the reference's along its rows (vertical) and its columns
        (1: unchanged; 1.02: magnified 2 %); NaN where the fit did not converge.
    score : ndarray, float64, shape [frames]
        Correlation coefficient of the images aligned by the affine fit over ``weight``;
        0 where it did not converge.

    Notes
    -----
    ``cv2.findTransformECC`` with ``MOTION_AFFINE``; the scales are the diagonal of the
    fitted linear part.
    """
    _check_on_reference(images, reference, weight)
    shifts = np.asarray(shifts, dtype=np.float64).reshape(len(images), 2)
    prepared = registration_reference(reference, weight=weight, smooth_px=smooth_px)
    scales = np.full((len(images), 2), np.nan)
    score = np.zeros(len(images))
    for i, (dy, dx) in enumerate(shifts.tolist()):
        warp = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
        try:
            score[i], warp = _ecc(prepared, images[i], warp, cv2.MOTION_AFFINE, smooth_px)
        except cv2.error:  # did not converge
            continue
        scales[i] = warp[1, 1], warp[0, 0]
    return scales, score


def _ecc(prepared: RegistrationReference, image: np.ndarray, warp: np.ndarray, motion: int, smooth_px: float):
    """``cv2.findTransformECC`` of ``image`` on the prepared reference from ``warp`` (float32
    ``[2, 3]``): its score and warp. Raises ``cv2.error`` when it does not converge."""
    blur_reach = int(math.ceil(4 * smooth_px)) + 2  # OpenCV's float Gaussian reaches round(4 sigma) px
    # ECC only reads the image around the weight moved by the shift: its bounding box,
    # widened by the shift and a margin for the refinement and interpolation.
    reach = _ECC_MARGIN_PX + math.ceil(max(abs(warp[0, 2]), abs(warp[1, 2])))
    box = tuple(slice(max(ends[0] - reach, 0), ends[-1] + reach + 1) for ends in (prepared.rows, prepared.cols))
    # Smoothed on the box and the Gaussian's reach around it only: the same values in the box.
    around = tuple(slice(max(side.start - blur_reach, 0), side.stop + blur_reach) for side in box)
    inside = tuple(slice(side.start - wide.start, side.stop - wide.start) for side, wide in zip(box, around))
    return cv2.findTransformECC(
        prepared.smoothed[box],
        smooth(image[around], sigma_px=smooth_px)[inside],
        warp,
        motion,
        _ECC_CRITERIA,
        prepared.mask[box],
        1,
    )


def shift_images(images: np.ndarray, shifts: np.ndarray, *, order: int = 1) -> np.ndarray:
    """Translate each image by its ``(dy, dx)`` shift (sub-pixel, edges replicated).

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
        Float images, or bool masks (then nearest-neighbour is forced and bool returned).
    shifts : ndarray, shape [frames, 2]
        ``(dy, dx)`` px; the output pixel ``(r, c)`` takes the input at ``(r - dy, c - dx)``.
    order : {0, 1, 3}, optional
        0 nearest neighbour, 1 bilinear, 3 bicubic (sharp edges such as the needle keep
        their profile best).

    Returns
    -------
    ndarray, same shape; float32 for float input, bool for bool input.

    Notes
    -----
    A translation is separable and its fraction of a pixel is the same everywhere, so
    bilinear and bicubic (Keys, ``a = -0.75``, as OpenCV) are one pass of 2 or 4 taps
    along each axis (``cv2.sepFilter2D``) on the image padded by edge replication,
    read at the whole-pixel offset. Nearest neighbour is ``cv2.warpAffine``'s, which
    rounds every point (see :func:`_whole_offset`): where that moves every pixel by the
    same whole pixels, as nearly always, a crop and a border (``cv2.copyMakeBorder``)
    give its result.
    """
    _check_ndim(images, (3,), "images")
    shifts = np.asarray(shifts, dtype=np.float64).reshape(images.shape[0], 2)
    is_mask = images.dtype == bool
    source = images.view(np.uint8) if is_mask else np.asarray(images, dtype=np.float32)
    if order not in (0, 1, 3):
        raise ValueError(f"`order` must be 0, 1 or 3; got {order!r}.")
    out = np.empty_like(source)
    border = cv2.BORDER_CONSTANT if is_mask else cv2.BORDER_REPLICATE
    for i, (dy, dx) in enumerate(shifts):
        if is_mask or order == 0:
            _nearest(source[i], dy, dx, border, out[i])
        else:
            _translate(source[i], -dy, -dx, order, out[i])
    return out.view(bool) if is_mask else out


def _whole_offset(size: int, shift: float) -> int | None:
    """How many pixels away a nearest-neighbour move by ``shift`` px reads each of ``size``
    positions ``p`` along an axis: ``p - shift`` rounded half to even in float32 (as
    ``cv2.warpAffine`` and the torch backend round each point), less ``p``, when that is
    the same at every position; None where it is not (a half pixel rounds to even, so
    alternately, and float32 rounds near-halves apart far along the axis) or where
    ``shift`` is not under ``size - 1``."""
    if not abs(shift) < size - 1:  # (NaN neither)
        return None
    positions = np.arange(size, dtype=np.float32)
    offsets = np.rint(positions - np.float32(shift)) - positions
    whole = offsets[0]
    return int(whole) if (offsets == whole).all() else None


def _nearest(image: np.ndarray, dy: float, dx: float, border: int, out: np.ndarray) -> None:
    """``image`` moved by ``(dy, dx)`` px into ``out``, nearest neighbour; off the image ``border``
    (``cv2.BORDER_REPLICATE`` or ``cv2.BORDER_CONSTANT`` with 0)."""
    rows, cols = image.shape
    oy, ox = _whole_offset(rows, dy), _whole_offset(cols, dx)
    if oy is None or ox is None:
        matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        cv2.warpAffine(image, matrix, (cols, rows), dst=out, flags=cv2.INTER_NEAREST, borderMode=border)
        return
    # Every output pixel reads the one (oy, ox) px away: the part of the image still in view, and a border.
    kept = image[max(oy, 0) : rows + min(oy, 0), max(ox, 0) : cols + min(ox, 0)]
    cv2.copyMakeBorder(kept, max(-oy, 0), max(oy, 0), max(-ox, 0), max(ox, 0), border, dst=out, value=0)


_CUBIC_A = -0.75  # OpenCV's bicubic (Keys) coefficient


def _taps(fraction: float, order: int) -> np.ndarray:
    """Interpolation weights, float32, of the source pixels ``base - 1 ... base + 2`` (order 3)
    or ``base, base + 1`` (order 1) for a point ``fraction`` (in [0, 1)) past ``base``."""
    f = fraction
    if order == 1:
        return np.array([1.0 - f, f], np.float32)
    a = _CUBIC_A
    w0 = ((a * (f + 1) - 5 * a) * (f + 1) + 8 * a) * (f + 1) - 4 * a
    w1 = ((a + 2) * f - (a + 3)) * f * f + 1
    w2 = ((a + 2) * (1 - f) - (a + 3)) * (1 - f) * (1 - f) + 1
    return np.array([w0, w1, w2, 1 - w0 - w1 - w2], np.float32)


def _translate(image: np.ndarray, offset_y: float, offset_x: float, order: int, out: np.ndarray) -> None:
    """``out[r, c] = image[r + offset_y, c + offset_x]``, interpolated; edges replicated."""
    rows, cols = image.shape
    base_y, base_x = math.floor(offset_y), math.floor(offset_x)
    taps_y, taps_x = _taps(offset_y - base_y, order), _taps(offset_x - base_x, order)
    first = 1 if order == 3 else 0  # the first tap is this many pixels before the base
    n = taps_y.size
    # Output row r reads source rows r + base_y - first ... + n - 1: pad by replication
    # to hold all of them, then filter the window that starts at output row 0's first tap.
    top, left = max(first - base_y, 0), max(first - base_x, 0)
    bottom, right = max(rows + base_y - first + n - 1 - rows, 0), max(cols + base_x - first + n - 1 - cols, 0)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    r0, c0 = base_y - first + top, base_x - first + left
    window = padded[r0 : r0 + rows + n - 1, c0 : c0 + cols + n - 1]
    out[...] = cv2.sepFilter2D(window, cv2.CV_32F, taps_x, taps_y, anchor=(0, 0))[:rows, :cols]


def recursive_filter(images: np.ndarray, *, alpha: float, state: np.ndarray | None = None) -> np.ndarray:
    """Temporal recursive (exponential moving average) filter along the frame axis.

    ``out[t] = alpha * images[t] + (1 - alpha) * out[t - 1]``, with ``out[-1] = state``
    (or ``images[0]`` when no state is given).

    Parameters
    ----------
    images : ndarray, shape [frames, rows, cols]
    alpha : float
        Weight of the newest frame, in (0, 1]; 1 switches the filter off.
    state : ndarray, shape [rows, cols], optional
        The filtered image before ``images[0]`` (from the previous batch).

    Returns
    -------
    ndarray, float32, shape [frames, rows, cols]; its last image is the next ``state``.
    """
    _check_ndim(images, (3,), "images")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"`alpha` must be in (0, 1]; got {alpha!r}.")
    if alpha == 1.0:  # (the filter off: the images themselves, without the arithmetic)
        return np.array(images, dtype=np.float32, copy=True)
    out = np.empty(images.shape, dtype=np.float32)
    previous = np.asarray(images[0] if state is None else state, dtype=np.float32)
    for t, image in enumerate(images):
        previous = out[t] = np.float32(alpha) * image + np.float32(1.0 - alpha) * previous
    return out


def needle_mask(reference: np.ndarray, *, min_excess: float, background_px: int = 15) -> np.ndarray:
    """Where a very dense thin object (the steel needle) lies in a reference attenuation image.

    A pixel belongs to the needle when its attenuation exceeds the local background
    (a grey opening, i.e. a morphological top-hat, over ``background_px``) by
    ``min_excess``: a steel trocar adds several units of attenuation, bone edges far less.

    Parameters
    ----------
    reference : ndarray, shape [rows, cols]
        Attenuation image without cement (the pre-injection baseline).
    min_excess : float
        Attenuation above the local background that only steel reaches.
    background_px : int, optional
        Size of the opening that removes thin dense structures, px (wider than the needle).

    Returns
    -------
    ndarray of bool, shape [rows, cols].
    """
    _check_ndim(reference, (2,), "reference")
    reference = np.asarray(reference, dtype=np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (background_px, background_px))
    return (reference - cv2.morphologyEx(reference, cv2.MORPH_OPEN, kernel)) > min_excess


def cement_candidates(
    excess: np.ndarray,
    *,
    threshold: float,
    threshold_raise: np.ndarray | None = None,
    raise_gain: float = 1.0,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels whose attenuation above the baseline is that of cement.

    Parameters
    ----------
    excess : ndarray, shape [frames, rows, cols] or [rows, cols]
        Attenuation minus the motion-compensated pre-injection baseline.
    threshold : float
        Excess attenuation above which a pixel holds cement (bone and soft tissue are in
        the baseline, so they add nothing; cement adds ``mu_cement * thickness``).
    threshold_raise : ndarray, shape [rows, cols], optional
        Added to ``threshold`` per pixel, times ``raise_gain``: where noise or steep edges
        of the baseline (needle, cortex) would pass for cement. For edges it is the
        baseline's gradient magnitude (attenuation/px) with ``raise_gain`` the residual
        registration error (px), since a sub-pixel misregistration leaves an excess of
        about ``gradient * error``; a raise already in attenuation takes the gain 1.
    raise_gain : float, optional
        Factor on ``threshold_raise``; 0 ignores it.
    exclude : ndarray of bool, shape [rows, cols], optional
        Pixels that never count as cement (e.g. the rim of the field).

    Returns
    -------
    ndarray of bool, same shape as ``excess``.
    """
    _check_ndim(excess, (2, 3), "excess")
    local = np.float32(threshold)
    if threshold_raise is not None and raise_gain > 0:
        gradient = np.asarray(threshold_raise, dtype=np.float32)
        local = local + (gradient if raise_gain == 1 else np.float32(raise_gain) * gradient)  # (x 1 is exact)
    mask = excess > local
    if exclude is not None:
        mask &= ~exclude
    return mask


def accumulate_cement(
    candidates: np.ndarray,
    *,
    time_s: np.ndarray,
    run_length: np.ndarray,
    run_start_s: np.ndarray,
    accumulated: np.ndarray,
    time_of_arrival_s: np.ndarray,
    min_run: int,
) -> np.ndarray:
    """Monotone accumulation: a pixel is cement once it was a candidate ``min_run`` frames in a row.

    Cement does not vanish, so once counted a pixel stays. Updates the four state arrays
    in place (they carry over from one batch to the next).

    Parameters
    ----------
    candidates : ndarray of bool, shape [frames, rows, cols]
        Per-frame cement candidates, in time order.
    time_s : ndarray, shape [frames]
        Time of each frame, s.
    run_length : ndarray, int16, shape [rows, cols]
        Consecutive candidate frames so far (state).
    run_start_s : ndarray, float32, shape [rows, cols]
        Time of the first frame of the current run, s (state; meaningless where
        ``run_length`` is 0).
    accumulated : ndarray of bool, shape [rows, cols]
        Cement so far (state).
    time_of_arrival_s : ndarray, float32, shape [rows, cols]
        When cement reached each pixel (the start of the run that made it cement), s;
        NaN where never (state).
    min_run : int
        Frames in a row needed, >= 1.

    Returns
    -------
    ndarray of bool, shape [frames, rows, cols]
        The accumulated cement after each frame.
    """
    _check_ndim(candidates, (3,), "candidates")
    if min_run < 1:
        raise ValueError(f"`min_run` must be >= 1; got {min_run!r}.")
    top = np.iinfo(run_length.dtype).max
    out = np.empty(candidates.shape, dtype=bool)
    for t, frame in enumerate(candidates):
        # Only pixels that are candidates or in a run change: work on their bounding box.
        rows, cols = (np.flatnonzero(frame.any(axis=a) | run_length.any(axis=a)) for a in (1, 0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if rows.size else (slice(0, 0),) * 2
        frame, runs, starts = frame[box], run_length[box], run_start_s[box]
        np.copyto(starts, time_s[t], where=frame & (runs == 0), casting="unsafe")
        runs[:] = np.where(frame, np.minimum(runs, top - 1) + 1, 0)  # saturates, never wraps
        new = (runs >= min_run) & ~accumulated[box]
        np.copyto(time_of_arrival_s[box], starts, where=new)
        accumulated[box] |= new
        out[t] = accumulated
    return out


def label_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a mask.

    Parameters
    ----------
    mask : ndarray of bool, shape [rows, cols]

    Returns
    -------
    labels : ndarray, int32, shape [rows, cols]
        0 for background, 1..n for the components.
    areas_px : ndarray, int64, shape [n + 1]
        Pixel count per label (``areas_px[0]`` is the background).
    """
    box, boxed, areas = _label_box(mask)
    labels = np.zeros(mask.shape, np.int32)
    labels[box] = boxed
    return labels, areas


def _label_box(mask: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """:func:`label_components` on the bounding box of the mask only (cement is small in a
    large frame): the box, its labels (int32) and the areas of all labels (px)."""
    _check_ndim(mask, (2,), "mask")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), np.int32), np.array([mask.size], np.int64)
    # The box's corner is on even coordinates, so OpenCV's 2 x 2 block scan numbers as on the whole.
    top, left = rows[0] - rows[0] % 2, cols[0] - cols[0] % 2
    box = (slice(top, rows[-1] + 1), slice(left, cols[-1] + 1))
    boxed = np.asarray(mask[box], dtype=bool)
    count, labels = cv2.connectedComponents(boxed.astype(np.uint8), connectivity=8)
    # Areas counted from the labels: OpenCV's component statistics take several times the labelling.
    areas = np.bincount(labels[boxed], minlength=count).astype(np.int64, copy=False)
    areas[0] = mask.size - areas[1:].sum()
    return box, labels, areas


class Components(NamedTuple):
    """The 8-connected components of a mask, labelled once for several questions (see
    :func:`components`). ``areas`` is per component, px; the other fields are the backend's own."""

    shape: tuple[int, int]
    box: tuple[slice, slice]
    labels: np.ndarray
    areas: np.ndarray


def components(mask: np.ndarray) -> Components:
    """The 8-connected components of a mask, for :func:`component_hits` and :func:`component_mask`.

    Parameters
    ----------
    mask : ndarray of bool, shape [rows, cols]

    Returns
    -------
    Components
        Its ``areas`` is an int64 vector with an entry per component, its area in px, and
        entries that are no component (the background) at 0. The vector's length and order
        are the backend's own: combine the vectors of one labelling element by element, and
        turn them back into pixels with :func:`component_mask`.
    """
    box, labels, areas = _label_box(mask)
    areas = areas.copy()
    areas[0] = 0
    return Components(mask.shape, box, labels, areas)


def component_hits(parts: Components, where: np.ndarray) -> np.ndarray:
    """Pixels of each component in ``where`` (bool ``[rows, cols]``): a vector like ``parts.areas``."""
    hits = np.bincount(parts.labels[where[parts.box]], minlength=parts.areas.size)
    hits[0] = 0
    return hits


def component_mask(parts: Components, keep: np.ndarray) -> np.ndarray:
    """The components whose entry of ``keep`` (a bool vector like ``parts.areas``) is True, whole:
    bool ``[rows, cols]``."""
    keep = np.asarray(keep, dtype=bool).copy()
    keep[0] = False
    out = np.zeros(parts.shape, bool)
    out[parts.box] = keep[parts.labels]
    return out


def components_touching(mask: np.ndarray, touching: np.ndarray) -> np.ndarray:
    """The 8-connected components of ``mask`` that overlap ``touching``, whole.

    Parameters
    ----------
    mask, touching : ndarray of bool, shape [rows, cols]

    Returns
    -------
    ndarray of bool, shape [rows, cols].
    """
    parts = components(mask)
    return component_mask(parts, component_hits(parts, touching) > 0)


def largest_component_px(masks: np.ndarray) -> np.ndarray:
    """Pixel count of the largest 8-connected component of each mask.

    Parameters
    ----------
    masks : ndarray of bool, shape [frames, rows, cols]

    Returns
    -------
    ndarray, int64, shape [frames].
    """
    _check_ndim(masks, (3,), "masks")
    return np.array([_label_box(m)[2][1:].max(initial=0) for m in masks], dtype=np.int64)
