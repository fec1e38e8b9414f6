"""What the engine remembers between frames: the whole history it needs, and no more."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vpimage.alerts import AlertStateMachine
from vpimage.measures import Corners, FrontSpeedEstimator

__all__ = ["EngineState", "PreInjectionBuffer", "SegmentationMaps"]


@dataclass
class PreInjectionBuffer:
    """The frames before any cement, each aligned on the reference and read at its contrast
    and level, and what was measured of each: their mean becomes the baseline.

    Attributes
    ----------
    frames : list of ndarray, float32, [roi_rows, roi_cols]
        Aligned attenuation of each buffered frame (the engine's backend arrays).
    coarse : list of ndarray, float32, [rows // factor, cols // factor]
        The same frames on the registration grid (their mean becomes the reference).
    noise : list of float
        Raw pixel noise of each frame (attenuation units).
    outliers : list of float
        The share of outliers among each frame's bone pixels (see ``kernels.pixel_noise``), 0..1.
    gain : list of float
        The gain each frame was divided by to show the reference's contrast.
    offset : list of 0-d arrays
        The offset of level then taken out of each frame (attenuation units).
    index : list of int
        The frame index of each.
    fields : list of ndarray of bool, [roi_rows, roi_cols]
        The pixels each frame measures: well inside its field (and the search margin).
    inside : ndarray of bool, [roi_rows, roi_cols] or None
        Pixels every buffered frame measures (the intersection of ``fields``); None while the
        buffer is empty.
    """

    frames: list = field(default_factory=list)
    coarse: list = field(default_factory=list)
    noise: list = field(default_factory=list)
    outliers: list = field(default_factory=list)
    gain: list = field(default_factory=list)
    offset: list = field(default_factory=list)
    index: list = field(default_factory=list)
    fields: list = field(default_factory=list)
    inside: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, frame, coarse, inside, *, noise: float, outliers: float, gain: float, offset, index: int) -> None:
        """Buffer one frame (its own arrays, not views that hold a whole batch) and what was measured of it."""
        self.frames.append(frame)
        self.coarse.append(coarse)
        self.noise.append(noise)
        self.outliers.append(outliers)
        self.gain.append(gain)
        self.offset.append(offset)
        self.index.append(index)
        self.fields.append(inside)
        self.inside = inside if self.inside is None else self.inside & inside

    def drop(self, i: int) -> None:
        """Leave buffered frame ``i`` out, and the pixels only its field left out with it."""
        records = (self.frames, self.coarse, self.noise, self.outliers, self.gain, self.offset, self.index, self.fields)
        for record in records:
            del record[i]
        self.inside = functools.reduce(operator.and_, self.fields) if self.fields else None

    def read_at(self, level: float, gain: float) -> None:
        """Read every buffered frame again as ``(frame + level) * gain``, its noise times ``gain``."""
        self.frames = [(frame + level) * gain for frame in self.frames]
        self.coarse = [(frame + level) * gain for frame in self.coarse]
        self.noise = [noise * gain for noise in self.noise]

    @property
    def outlier_share(self) -> float:
        """The median of the frames' outlier shares, 0..1."""
        return float(np.median(self.outliers))

    @property
    def shown_gain(self) -> float:
        """The gain more than half of the buffered frames were divided by, else 1 (the
        reference's contrast).

        Their median, and of an even number's two middle gains the one nearer 1: a gain one of
        them showed (of 1, 1.1 and 1.2 twice, 1.1, not the median's 1.15, a contrast no frame
        showed), and 1 when only half of them were divided. Half of six
        pre-injection frames shown at 0.8, 0.9 or 1.1 times the reference's gain and read back
        at it (the upper median, as before) gave cement a Dice of 0.92-0.99 against the
        unchanged run's and, on a venous leak, a frame's alert changed; read at the
        reference's contrast, 0.98-0.997 and every alert the same (three runs each).
        """
        gains = np.sort(self.gain)
        lower, upper = gains[(len(gains) - 1) // 2], gains[len(gains) // 2]
        return float(upper if abs(upper - 1.0) < abs(lower - 1.0) else lower)


@dataclass(frozen=True)
class SegmentationMaps:
    """What the baseline fixes for the segmentation, once, when it is frozen: how far the cement
    threshold rises at each pixel (steep baseline edges, noisy pixels), attenuation units, for
    each way cement is seen, and where it is not looked for.

    Attributes
    ----------
    cement_raise : ndarray, float32, [roi_rows, roi_cols]
        The raise of the cement threshold on the recursively filtered excess.
    instant_raise : ndarray, float32, [roi_rows, roi_cols] or None
        The same for the excess before the recursive filter (None when there is none).
    bridge_raise : ndarray, float32, [roi_rows, roi_cols]
        The same for the pixels that bridge new cement to the cement so far (less on steep
        edges away from the needle).
    far_blob_raise : ndarray, float32, [roi_rows, roi_cols]
        The same where the smoothed gradient underestimates what a sub-pixel misregistration
        leaves on sharp bone (as beyond the body everywhere): a quarter of a new blob away
        from the cement so far must stand above it.
    channel_raise : ndarray, float32, [roi_rows, roi_cols] or None
        The same for the excess through ``segmentation.leak_median_px``'s narrow median, at
        once, beyond the body's outline, where a leak's thin channel may extend the cement
        (its own noise; None when the study's filter is no wider, or no body).
    channel_excluded : ndarray of bool, [roi_rows, roi_cols] or None
        Where that channel is not looked for: the body and the needle (None with no channel).
    needle : ndarray of bool, [roi_rows, roi_cols]
        The needle and a margin: new cement may not start there, only grow into it.
    needle_rim : ndarray of bool, [roi_rows, roi_cols]
        The needle's edges and margin (not its core): cement does not grow along them.
    excluded : ndarray of bool, [roi_rows, roi_cols]
        Never cement: pixels outside the field (or at its rim, or beyond the search margin) in
        some baseline frame.
    blind : ndarray of bool, [rows, cols]
        Host map of the pixels where thin cement goes unseen (``cement_raise`` at least
        ``reliability.blind_threshold_ratio`` times the cement contrast: the needle's shadow);
        False outside the region of interest.
    """

    cement_raise: np.ndarray
    instant_raise: np.ndarray | None
    bridge_raise: np.ndarray
    far_blob_raise: np.ndarray
    channel_raise: np.ndarray | None
    channel_excluded: np.ndarray | None
    needle: np.ndarray
    needle_rim: np.ndarray
    excluded: np.ndarray
    blind: np.ndarray


@dataclass
class EngineState:
    """Per-study state of the incremental engine, in reference coordinates.

    The reference frame is the first frame: every image is moved back onto it before it
    is compared with the baseline, and masks, corners and maps live there. Cement is
    looked for in the engine's region of interest (the body and a leak search margin, a
    ``[roi_rows, roi_cols]`` box of the reference frame): the segmentation's images are
    that box, the accumulation state is whole frames (zeros outside the box). Memory is
    bounded: a few images and at most ``baseline_frames_max`` buffered pre-injection frames.

    The images and masks are arrays of the engine's kernel backend, on its device (numpy
    arrays, or torch tensors on the cpu or a CUDA device); :meth:`on_device` moves the
    accumulation state there. :attr:`time_of_arrival_s` is always a host copy.

    Attributes
    ----------
    reference : ndarray, float32, [rows // factor, cols // factor] or None
        What motion is measured against, on the registration grid (block means of ``factor``
        px, the engine's ``Registration``): frame 0, then the mean of the aligned
        pre-injection frames.
    pre_injection : PreInjectionBuffer
        The frames before any cement, while the baseline is open (empty once it is frozen).
    outlier_reference : float or None
        The median share of outliers among the buffered frames' bone pixels: the share the
        study's own anatomy gives, which a frame's must not exceed by
        ``reliability.max_outlier_rise``; None before the first buffered frame.
    baseline : ndarray, float32, [roi_rows, roi_cols] or None
        Mean aligned attenuation before injection; None until it is frozen.
    baseline_frames : int
        Pre-injection frames the baseline is the mean of; 0 until it is frozen.
    baseline_left_out : list of int
        Indices of buffered frames left out of the baseline when it was frozen: part of each
        did not match the others (see ``BaselineMatch.leave_out_mismatched``).
    maps : SegmentationMaps or None
        What the baseline fixes for the segmentation (thresholds, the needle, what is never
        cement); None until it is frozen.
    new_blobs : ndarray of bool, [roi_rows, roi_cols] or None
        Cement candidates of the last frame that were away from the cement so far (a
        new blob counts once it is seen again); None until the first frame.
    filtered : ndarray, float32, [roi_rows, roi_cols] or None
        Recursive-filter state of the excess attenuation.
    run_length, run_start_s, accumulated, arrival_s : ndarray, [rows, cols]
        Monotone accumulation state (see ``accumulate_cement``); ``accumulated`` is the
        cement so far, ``arrival_s`` when it arrived (s, NaN where never).
    cement_area_px : int
        Pixels of ``accumulated`` at the last measured frame (a host count).
    shape_measures : tuple or None
        ``(area_px, corners, front_to_wall_px, depth_fraction, leaks, stray_px, hidden_front_to_wall_px)`` of the last frame
        measured: the accumulation is monotone, so an unchanged area is an unchanged mask,
        and with the same corners its measures are these again.
    corners : Corners or None
        Vertebral body in reference coordinates; None when the wall is unknown.
    corners_anchor_frame : int or None
        Frame the given corners belong to, until it (or, when it is unusable, the first
        usable frame after it) is seen and they are moved onto the reference; None once
        anchored.
    shift_px : ndarray, float64, [2]
        Last measured ``(dy, dx)`` of the image against the reference, px.
    display_gain : float
        The gain of the contrast the last frame showed against the reference, as measured
        (see ``DisplayGain.gains``); NaN before a frame against this reference.
    registration_scores : list of float
        The registration scores of the last frames measured against the reference (at most
        five; see ``Engine._score_level``).
    speed : FrontSpeedEstimator
    alerts : AlertStateMachine
    to_host : callable
        The backend's ``to_host`` kernel (backend array -> host numpy array).
    """

    rows: int
    columns: int
    speed: FrontSpeedEstimator
    alerts: AlertStateMachine
    corners: Corners | None
    corners_anchor_frame: int | None
    reference: np.ndarray | None = None
    pre_injection: PreInjectionBuffer = field(default_factory=PreInjectionBuffer)
    outlier_reference: float | None = None
    baseline: np.ndarray | None = None
    baseline_frames: int = 0
    baseline_left_out: list = field(default_factory=list)
    maps: SegmentationMaps | None = None
    filtered: np.ndarray | None = None
    shift_px: np.ndarray = field(default_factory=lambda: np.zeros(2))
    display_gain: float = math.nan
    registration_scores: list = field(default_factory=list)
    cement_area_px: int = 0
    shape_measures: tuple | None = None
    to_host: Callable = np.asarray
    run_length: np.ndarray = field(init=False)
    run_start_s: np.ndarray = field(init=False)
    accumulated: np.ndarray = field(init=False)
    arrival_s: np.ndarray = field(init=False)
    new_blobs: np.ndarray | None = field(default=None, init=False)

    def __post_init__(self):
        shape = (self.rows, self.columns)
        self.run_length = np.zeros(shape, np.int16)
        self.run_start_s = np.zeros(shape, np.float32)
        self.accumulated = np.zeros(shape, bool)
        self.arrival_s = np.full(shape, np.nan, np.float32)

    def on_device(self, to_device: Callable) -> None:
        """Move the per-pixel accumulation state with ``to_device`` (host array -> backend array)."""
        for name in ("run_length", "run_start_s", "accumulated", "arrival_s"):
            setattr(self, name, to_device(getattr(self, name)))

    @property
    def time_of_arrival_s(self) -> np.ndarray:
        """When cement reached each pixel, s (NaN where never): float32 [rows, cols], a host copy of ``arrival_s``."""
        return self.to_host(self.arrival_s)

    @property
    def injecting(self) -> bool:
        """True once the baseline is frozen and cement is looked for."""
        return self.baseline is not None
