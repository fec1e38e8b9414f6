"""Whether a frame matches the frames its baseline is made of.

Cement only adds attenuation, and noise and sub-pixel misregistration leave as much below the
baseline as above it, which the cement threshold already holds back: a frame whose
attenuation fell below its baseline over a cement-sized blob does not match it in part (rows
of it shifted by a damaged decode, a part of the anatomy that moved against the rest), and what
it gained there is no cement either (``baseline_mismatch``). Asked of each frame before the
injection against the frames buffered so far (which also tells whether cement appeared), of
the buffered frames against each other when the baseline is frozen, and after it of the frames
the translation explains less well than the frames before.
"""

from __future__ import annotations

import numpy as np

from vpimage.config import RunConfig
from vpimage.engine._denoise import Denoiser
from vpimage.engine._segment import Segmenter
from vpimage.engine._state import PreInjectionBuffer, SegmentationMaps
from vpimage.kernels import get_backend

__all__ = ["BaselineMatch"]

_HOST = get_backend("numpy")  # (a buffered frame's pixel noise is measured on the host)


class BaselineMatch:
    """The baseline-mismatch checks of one study, on the region of interest.

    Parameters
    ----------
    kernels : module
        The engine's kernel backend.
    config : RunConfig
        ``config.segmentation``: the cement contrast and the least area of cement, px, a
        mismatch must cover too.
    denoiser : Denoiser
        The study's noise reduction (its filter is the noisiest study's until it is fitted).
    segmenter : Segmenter
        The study's segmentation (its needle, edges and noise raise).
    noise_region : ndarray of bool, [roi_rows, roi_cols]
        Host map of the pixels a single frame's noise is measured on (the body, else the bone).
    min_snr : float
        The cement contrast to noise the denoising aims at.
    """

    def __init__(
        self, kernels, config: RunConfig, denoiser: Denoiser, segmenter: Segmenter, *, noise_region: np.ndarray,
        min_snr: float,
    ):
        self.kernels, self.config, self.denoiser, self.segmenter = kernels, config, denoiser, segmenter
        self._noise_region = noise_region
        self._min_snr = min_snr

    def against_buffer(self, buffer: PreInjectionBuffer, aligned, inside) -> tuple[bool, bool]:
        """Whether the ``aligned`` frame (device, ``[roi_rows, roi_cols]``; ``inside``: the pixels
        it measures) holds a cement-sized blob against the mean of the ``buffer``'s frames, and
        whether its attenuation fell below that mean over one (see :meth:`_fallen_px`); neither
        against an empty buffer.

        Asked from the second usable frame on, however few frames are buffered: a frame with
        cement that joined the buffer would put its cement into the baseline. When the
        frames between the first and the injection could not be used (blank, clipped), the
        first usable one joined it, and the rest of the run was ``unreliable`` (the baseline's
        frame-to-frame noise held the cement) or its cement seen late (see the README).
        Before an injection, the blob asked for never showed against one or two frames on the
        phantom (38 runs: low dose, tilt, sudden shift, MONOCHROME1, changes of exposure and
        of collimation), so a run with a usable start is measured as it was.
        """
        k, seg = self.kernels, self.config.segmentation
        if len(buffer) == 0:
            return False, False
        exclude = ~(inside & buffer.inside)
        mean = k.mean_frames(buffer.frames)
        difference = aligned - mean
        gain = buffer.shown_gain
        if gain != 1.0:  # (at the contrast most buffered frames show, as the baseline reads them)
            difference, mean = difference * gain, mean * gain
        # Zero off the field before filtering, so that its edge cannot bleed inward.
        excess = self.denoiser.apply(k.mask_field(difference, ~exclude, fill=0.0))
        edges = self.segmenter.edge_strength(mean)
        # (The needle left out, as after the injection: a stylet pulled out of its cannula
        # leaves less steel, over a flat core where the needle is wide.)
        needle = self.segmenter.needle_in(mean)[1]
        if self._fallen_px(excess, edges, seg.registration_error_px, exclude | needle) >= seg.min_area_px:
            return False, True
        candidates = k.cement_candidates(
            excess, threshold=seg.cement_contrast, threshold_raise=edges, raise_gain=seg.registration_error_px,
            exclude=exclude,
        )
        return bool(k.largest_component_px(candidates[None])[0] >= seg.min_area_px), False

    def fell_below_baseline(self, baseline, maps: SegmentationMaps, aligned, inside) -> bool:
        """Whether the ``aligned`` frame's attenuation (device, ``[roi_rows, roi_cols]``;
        ``inside``: the pixels it measures) fell below the ``baseline`` over a cement-sized blob
        (see :meth:`_fallen_px`), its excess read at once (before the recursive filter, its
        threshold raised by a single frame's noise, see ``maps``) and the needle left out
        (pulled back, it leaves less steel than the baseline holds)."""
        exclude = maps.excluded | ~inside | maps.needle
        excess = self.denoiser.apply(self.kernels.mask_field(aligned - baseline, ~exclude, fill=0.0))
        raised = maps.cement_raise if maps.instant_raise is None else maps.instant_raise
        return self._fallen_px(excess, raised, 1.0, exclude) >= self.config.segmentation.min_area_px

    def leave_out_mismatched(self, buffer: PreInjectionBuffer) -> list[int]:
        """Leave out of the ``buffer``'s frames, while three or more are, the one that matches
        the others least, as long as its attenuation fell below theirs over a cement-sized
        blob (see :meth:`_fallen_px`); returns the frame indices left out, in that order.

        Each frame was asked against the frames before it when it came, filtered as for the
        noisiest study (its noise unknown then), which smooths a part shifted by a pixel or
        two away, and the first frame against nothing. Such a frame in the baseline raises
        the noise measured on the frames' differences, and so the cement threshold, over
        all the bone of its attenuation: posterior_approach seed 3 with its frame 1 or 2's
        lower half shifted 2 px stopped two frames late. Here each frame is compared with the
        mean of the others, filtered as one frame's own pixel noise needs, its threshold
        raised by that noise (per attenuation level, see :meth:`Denoiser.noise_map`; a shifted
        part leaves a frame's pixel noise as it is) and by the mean's edges. The noise is
        taken once, from the first frame, for a mean of two others (the fewest it may be).
        Of two frames, which one is off cannot be told: both stay. On the phantom a frame's
        lower half shifted 2 px left 63-134 px; no frame of the accuracy tests' 30 cases x 4
        runs (plain, exposure changes, blades closing in, the needle pulled back; 600 buffered
        frames) more than 2 px.
        """
        k, seg = self.kernels, self.config.segmentation
        left_out: list[int] = []
        if len(buffer) < 3:
            return left_out
        first = k.to_host(buffer.frames[0])
        pixel_noise = float(_HOST.pixel_noise(first[None], weight=self._noise_region)[0][0])
        step = self.denoiser.single_frame_step(
            pixel_noise, contrast=seg.cement_contrast, min_snr=self._min_snr, baseline_frames=2
        )
        levels, measured = k.to_host(k.mean_frames(buffer.frames)), k.to_host(buffer.inside)
        noise_map = self.denoiser.noise_map([first], levels, measured, step=step, baseline_frames=2)
        noise = self.segmenter.noise_raise(noise_map)
        while len(buffer) >= 3:
            n, mean = len(buffer), k.mean_frames(buffer.frames)
            exclude = ~buffer.inside | self.segmenter.needle_in(mean)[1]
            raised = seg.registration_error_px * self.segmenter.edge_strength(mean) + noise
            fallen = [
                self._fallen_px(
                    self.denoiser.apply(k.mask_field(frame - (mean * n - frame) / (n - 1), ~exclude, fill=0.0), step),
                    raised, 1.0, exclude,
                )
                for frame in buffer.frames
            ]
            worst = int(np.argmax(fallen))
            if fallen[worst] < seg.min_area_px:
                break
            left_out.append(buffer.index[worst])
            buffer.drop(worst)
        return left_out

    def _fallen_px(self, excess, threshold_raise, raise_gain: float, exclude) -> int:
        """The largest blob, px, where ``excess`` (filtered, region of interest) lies below the
        baseline by what would be cement above it; one as large as new cement must be
        (``segmentation.min_area_px``) is a mismatch.

        On the phantom, every frame asked, the largest such blob was 8 px (4 before the
        injection) on the 7,200 frames of the accuracy tests' 30 cases (plain, with exposure
        changes, blades closing in, the needle pulled back); a frame's rows below the middle
        shifted 2 px sideways gave 50-144 px (8 at the lowest dose with a 25 degree tilt, whose
        single frame's noise raises the threshold), 7 px 300-560 px.
        """
        k, seg = self.kernels, self.config.segmentation
        fell = k.cement_candidates(
            -excess, threshold=seg.cement_contrast, threshold_raise=threshold_raise, raise_gain=raise_gain,
            exclude=exclude,
        )
        return int(k.largest_component_px(fell[None])[0])
