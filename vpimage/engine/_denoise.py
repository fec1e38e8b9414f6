"""Noise reduction of the excess attenuation, as strong as the study's noise needs.

A median filter (keeps edges in place) and, when the pixels are too noisy for the cement
contrast, the weakest step of a ladder of wider medians, Gaussian widths and recursive
(temporal) filters that brings the noise down to ``contrast / min_snr``. The spatial noise is
measured, not assumed: the spread of the difference of two aligned pre-injection frames
after the filter; the recursive filter keeps ``sqrt(alpha / (2 - alpha))`` of
frame-to-frame independent (quantum) noise.

The filter is applied with the engine's kernel backend (on its device); it is chosen, and
the noise map measured, once per study on the host with the numpy kernels, so every
backend chooses the same filter.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from vpimage.kernels import get_backend

__all__ = ["Denoiser"]

_HOST = get_backend("numpy")  # the kernels the filter is chosen with (host arrays)

# (median px, Gaussian width after it in px, recursive-filter weight of the newest frame),
# weakest first. Medians keep cement edges in place; a Gaussian moves the edge of thick
# cement outward and a recursive filter delays thin cement, so both come in small steps.
LADDER = (
    (3, 0.0, 1.0), (5, 0.0, 1.0), (5, 0.75, 1.0), (5, 0.0, 0.5), (5, 0.75, 0.5), (5, 1.0, 0.5),
    (5, 1.0, 0.35), (5, 1.5, 0.35), (5, 2.0, 0.35), (5, 2.0, 0.25), (5, 3.0, 0.25), (5, 4.0, 0.25),
)


def _temporal_gain(alpha: float) -> float:
    """Share of frame-to-frame independent noise a recursive filter of weight ``alpha`` keeps."""
    return math.sqrt(alpha / (2.0 - alpha))


def _spatial_filter(image, median_px: int, sigma_px: float, kernels):
    """``image`` [rows, cols] through a median of ``median_px`` then a Gaussian of ``sigma_px`` (px; 0: none)."""
    out = kernels.median(image, size_px=median_px)
    return kernels.smooth(out, sigma_px=sigma_px) if sigma_px > 0 else out


@lru_cache(maxsize=None)
def _white_noise_gain(median_px: int, sigma_px: float) -> float:
    """Share of white pixel noise (of its standard deviation) that the spatial filter keeps.

    Measured on 1024 x 1024 px of white noise, away from the border the filter reaches (the
    replicated border correlates the pixels there): within 0.2 % of the order statistics'
    0.4076 for a 3 px median and 0.2485 for a 5 px one.
    """
    white = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    reach = median_px // 2 + math.ceil(4 * sigma_px)  # (OpenCV's Gaussian reaches 4 widths)
    inner = slice(reach, white.shape[0] - reach)
    return float(np.std(_spatial_filter(white, median_px, sigma_px, _HOST)[inner, inner]))


class Denoiser:
    """The spatial filter of one study.

    Parameters
    ----------
    kernels : module
        The kernel backend (``median``, ``smooth``, ``pixel_noise``).
    median_px : {1, 3, 5}
        Smallest median filter, px (the ladder starts there).
    max_sigma_px : float
        Widest Gaussian allowed, px.
    min_alpha : float
        Strongest recursive filter allowed (weight of the newest frame, (0, 1]).

    Attributes
    ----------
    median_px : int
    sigma_px, alpha : float
        The chosen median (px), Gaussian width (px) and recursive-filter weight (the
        strongest allowed until :meth:`fit`).
    filtered_noise : float or None
        Noise of the filtered excess (attenuation units) measured by :meth:`fit`.
    pixel_noise : float or None
        The raw per-pixel noise at fit time (``pixel_noise`` over the monitored region),
        to scale later frames.
    """

    def __init__(self, kernels, *, median_px: int, max_sigma_px: float, min_alpha: float):
        self.kernels = kernels
        allowed = [(m, s, a) for m, s, a in LADDER if m >= median_px and s <= max_sigma_px and a >= min_alpha]
        if median_px < LADDER[0][0]:  # (no median, or a narrower one: the ladder starts there)
            allowed.insert(0, (median_px, 0.0, 1.0))
        self.ladder = tuple(allowed) or ((median_px, 0.0, 1.0),)
        self.median_px, self.sigma_px, self.alpha = self.ladder[-1]
        self.filtered_noise: float | None = None
        self.pixel_noise: float | None = None

    def apply(self, image: np.ndarray, step: tuple | None = None, kernels=None) -> np.ndarray:
        """Filter one ``[rows, cols]`` image (float32) spatially, with the chosen (or a given) step.

        ``kernels`` computes it (default: the engine's backend; ``image`` is its array).
        """
        median_px, sigma_px, _ = step or self.step
        return _spatial_filter(image, median_px, sigma_px, kernels or self.kernels)

    def shift_residual(self, image: np.ndarray, *, step_px: float) -> np.ndarray:
        """What moving ``image`` by ``step_px`` changes after the filter: the largest absolute
        change over the four moves along either axis, either way (bicubic), per pixel.

        A residual misregistration of ``step_px`` leaves about this in the filtered excess.
        On a smooth edge it is ``step_px`` times the filtered gradient; on bone the filter
        keeps sharp (a median keeps a straight step whole) it is up to twice what a
        smoothed gradient shows. Computed on the host.

        Parameters
        ----------
        image : ndarray, float32, [rows, cols]
            A host image (the baseline).
        step_px : float

        Returns
        -------
        ndarray, float32, [rows, cols]
        """
        steps = np.array([[step_px, 0.0], [-step_px, 0.0], [0.0, step_px], [0.0, -step_px]], np.float32)
        moved = _HOST.shift_images(np.stack([image] * len(steps)), steps, order=3)
        filtered = self.apply(image, kernels=_HOST)
        return np.max([np.abs(self.apply(m, kernels=_HOST) - filtered) for m in moved], axis=0)

    def fit(self, frames: list, region: np.ndarray, *, pixel_noise: float, contrast: float, min_snr: float) -> None:
        """Choose the weakest filter that leaves the cement ``min_snr`` times the noise.

        Parameters
        ----------
        frames : list of ndarray, float32, [rows, cols]
            Aligned pre-injection attenuation frames (at least one), host arrays.
        region : ndarray of bool, [rows, cols]
            Where the noise matters (the vertebral body), and is measured.
        pixel_noise : float
            Raw pixel noise of these frames as :meth:`noise_now` will be given it for
            later frames (measured the same way), to scale the filtered noise with.
        contrast : float
            The cement threshold, attenuation units.
        min_snr : float
            Wanted ratio of ``contrast`` to the filtered noise.
        """
        stack = np.stack(frames)
        self.pixel_noise = float(pixel_noise)
        region_noise = float(np.mean(_HOST.pixel_noise(stack, weight=region)[0]))
        # The excess is a frame minus the mean of the n baseline frames: (1 + 1/n) variance.
        scale = math.sqrt(1.0 + 1.0 / len(frames))
        for step in self.ladder:
            noise = self._filtered_noise(stack, region, step, region_noise) * scale * _temporal_gain(step[2])
            if contrast >= min_snr * noise:
                break
        (self.median_px, self.sigma_px, self.alpha), self.filtered_noise = step, noise

    def single_frame_step(self, pixel_noise: float, *, contrast: float, min_snr: float, baseline_frames: int) -> tuple:
        """The weakest spatial step (no recursive filter) that leaves ``contrast`` ``min_snr``
        times the noise of one frame, of white pixel noise ``pixel_noise``, minus the mean of
        ``baseline_frames`` others: what comparing frames one by one needs, whatever their
        differences hold (:meth:`fit` measures the noise on two of them)."""
        scale = math.sqrt(1.0 + 1.0 / baseline_frames)
        # (Every ladder starts with spatial steps: each holds the recursive weight 1.0.)
        spatial = [step for step in self.ladder if step[2] == 1.0]
        for step in spatial:
            if contrast >= min_snr * pixel_noise * scale * _white_noise_gain(*step[:2]):
                break
        return step

    def _filtered_noise(self, stack: np.ndarray, region: np.ndarray, step: tuple, pixel_noise: float) -> float:
        if len(stack) >= 2:  # the real, correlated noise: two frames of the same anatomy
            difference = self.apply(stack[-1] - stack[-2], step, _HOST)[region]
            return float(np.std(difference)) / math.sqrt(2.0)
        # One frame only: white noise of the measured level through the same filter.
        return pixel_noise * _white_noise_gain(*step[:2])

    def noise_map(
        self,
        frames: list,
        levels: np.ndarray,
        region: np.ndarray,
        *,
        bins: int = 48,
        step: tuple | None = None,
        baseline_frames: int | None = None,
    ) -> np.ndarray:
        """Noise of the spatially filtered excess at every pixel, from its attenuation level.

        Quantum noise grows with the attenuation a pixel sees (the steel needle's shadow
        lets far fewer quanta through than bone), so the noise is measured per level: the
        spread of the filtered difference of consecutive aligned frames over the pixels
        of each attenuation bin, scaled like :meth:`fit` scales it (the recursive filter
        then keeps :attr:`temporal_gain` of it).

        Parameters
        ----------
        frames : list of ndarray, float32, [rows, cols]
            Aligned pre-injection attenuation frames, host arrays.
        levels : ndarray, float32, [rows, cols]
            Attenuation of each pixel (the baseline).
        region : ndarray of bool, [rows, cols]
            Pixels the noise is measured on (the exposed field).
        bins : int
            Attenuation bins (quantiles of ``levels`` over ``region``).
        step : tuple, optional
            The spatial filter ``(median px, Gaussian width px, _)`` whose noise is
            measured; the chosen one by default.
        baseline_frames : int, optional
            The excess is a frame minus the mean of this many frames (default: as many as
            ``frames``, the baseline they make).

        Returns
        -------
        ndarray, float32, [rows, cols]
            Noise in attenuation units. From one frame (all a baseline has when cement
            shows in the second usable frame), the median spread of its pixels about their
            3 x 3 mean in each bin, as white noise through the filter.
        """
        if not region.any():
            return np.zeros(levels.shape, np.float32)
        smoothed = self.apply(levels, kernels=_HOST)
        edges = np.unique(np.quantile(smoothed[region], np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        which = np.digitize(smoothed, edges)
        if len(frames) >= 2:
            differences = [self.apply(b - a, step, _HOST) for a, b in zip(frames[:-1], frames[1:])]
            squares = np.mean([d**2 for d in differences], axis=0) / 2.0
            counts = np.bincount(which[region], minlength=edges.size + 1)
            sums = np.bincount(which[region], weights=squares[region], minlength=edges.size + 1)
            per_level = np.sqrt(sums / np.maximum(counts, 1))
        else:
            # Per level, the residual about the 3 x 3 mean: its median absolute value (edges of
            # anatomy left out) as a Gaussian's SD, scaled for the part of white noise the mean
            # keeps (8/9 of its variance), as kernels' pixel_noise reads a whole frame.
            residual = np.abs(frames[0] - ndi.uniform_filter(frames[0], size=3, mode="nearest"))
            levels_seen = np.arange(edges.size + 1)
            spread = 1.4826 * np.nan_to_num(ndi.median(residual[region], which[region], levels_seen))
            per_level = spread / math.sqrt(8.0 / 9.0) * _white_noise_gain(*(step or self.step)[:2])
        return (per_level[which] * math.sqrt(1.0 + 1.0 / (baseline_frames or len(frames)))).astype(np.float32)

    @property
    def step(self) -> tuple:
        """The chosen ``(median px, Gaussian width px, recursive-filter weight)``."""
        return self.median_px, self.sigma_px, self.alpha

    @property
    def temporal_gain(self) -> float:
        """Share of frame-to-frame independent noise the recursive filter keeps."""
        return _temporal_gain(self.alpha)

    def noise_now(self, pixel_noise: float) -> float:
        """Filtered noise expected for a frame of this raw pixel noise (attenuation units)."""
        if self.filtered_noise is None or not self.pixel_noise:
            # Not fitted yet: the strongest filter on white noise (a lenient estimate).
            spatial = math.sqrt(math.pi / 2) / self.median_px / (2 * math.sqrt(math.pi) * max(self.sigma_px, 0.5))
            return pixel_noise * spatial * self.temporal_gain
        return self.filtered_noise * pixel_noise / self.pixel_noise
