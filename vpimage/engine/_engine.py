"""The incremental engine: frame batches in, one measured and alerted result per frame out."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from vpimage import measures
from vpimage.alerts import (
    BODY_SIZE_IMPLAUSIBLE,
    MAGNIFICATION_UNKNOWN,
    NEEDLE_ENTERS_ANTERIOR,
    OBLIQUE_VIEW,
    PIXELS_TOO_COARSE,
    WHITE_LEVEL_UNREACHED,
    AlertStateMachine,
)
from vpimage.config import RunConfig
from vpimage.engine._baseline_match import BaselineMatch
from vpimage.engine._denoise import Denoiser
from vpimage.engine._display import DisplayGain
from vpimage.engine._measure import Measurer
from vpimage.engine._region import RegionOfInterest
from vpimage.engine._registration import Registration
from vpimage.engine._result import EngineFrame
from vpimage.engine._segment import Segmenter
from vpimage.engine._state import EngineState, PreInjectionBuffer
from vpimage.errors import ArgumentError
from vpimage.kernels import get_backend, resolve
from vpimage.measures import Corners

__all__ = ["Engine"]

# Without a calibration the rules sized in mm (registration margins, leak widths, adjacent
# blobs) need a pixel size all the same: the one that makes the body as deep as an adult
# lumbar body (about 35 mm antero-posterior; in the AP view, where the corners span its
# width, about 45 mm wide), unless that is no fluoroscope's pixel (0.05-2 mm) or the body's
# height then none (see measures.plausible_body); else a common fluoroscopy pixel, mm.
_NOMINAL_BODY_MM = {"lateral": 35.0, "oblique": 35.0, "ap": 45.0}
_FLUOROSCOPY_MM_PER_PX = (0.05, 2.0)
_NOMINAL_MM_PER_PX = 0.3


def _working_mm_per_px(mm_per_px: float | None, corners: Corners | None, view: str) -> float:
    """The pixel size the rules sized in mm are applied at, mm: the calibration's, else the
    one that gives the corners a nominal body's size, else :data:`_NOMINAL_MM_PER_PX`."""
    if mm_per_px is not None:
        return mm_per_px
    if corners is None:
        return _NOMINAL_MM_PER_PX
    depth_px = corners.depth_and_height_px()[0]
    scale = _NOMINAL_BODY_MM[view] / depth_px if depth_px > 0 else math.inf
    lo, hi = _FLUOROSCOPY_MM_PER_PX
    return scale if lo <= scale <= hi and measures.plausible_body(corners, scale) else _NOMINAL_MM_PER_PX


# A first frame whose exposed values span under this fraction (1 / N) of the white level doubts
# the study (the real angiogram of wg04 spans 0.46 of it, the phantom 0.7-0.9; a 12-bit image
# under a 16-bit header, 1/16).
_UNREACHED_WHITE = 8

# The denoising aims at this many times the reliability limit of cement contrast to noise.
_SNR_HEADROOM = 1.25

# Least share of the exposed field that motion is measured on.
_MIN_REGISTRATION_SHARE = 0.1
# A frame is fitted a magnification (Registration.magnified) when its registration score falls
# below the median of the last _SCORE_LEVEL_FRAMES frames measured against the reference (those it
# could use and did not fit a magnification: Engine._score_level).
_SCORE_LEVEL_FRAMES = 5
# How far a clipped pixel reaches into the bicubic alignment's result, px (its outer taps).
_BICUBIC_REACH_PX = 2
# Frames registered and aligned at a time on the cpu, the next ones by a worker thread meanwhile:
# 2 is the fastest at 512 and 1024 px (benchmarks/throughput.py).
_CPU_CHUNK_FRAMES = 2

# Unreliable reasons, as frames.csv writes them.
WALL_NOT_FOUND = "wall_not_found"
WALL_NOT_PLACED = "wall_not_placed"
NO_CALIBRATION = "no_calibration"
CLIPPED = "saturated_or_empty_frame"
MOTION_LOST = "motion_not_tracked"
MOTION_TOO_LARGE = "motion_too_large"
MOTION_JUMP = "sudden_motion"
TOO_NOISY = "image_too_noisy"
ARTEFACTS = "image_artefacts"
BODY_COLLIMATED = "body_collimated"
MAGNIFIED = "magnification_changed"
MISMATCH = "baseline_mismatch"
# Reasons that are about the image itself (it must not join the baseline).
_IMAGE_PROBLEMS = (
    CLIPPED, ARTEFACTS, MAGNIFIED, MISMATCH, MOTION_LOST, MOTION_TOO_LARGE, MOTION_JUMP, TOO_NOISY, BODY_COLLIMATED
)
# ... and those that keep it out of the segmentation too (a sudden but tracked motion does not).
_UNUSABLE = (CLIPPED, ARTEFACTS, MAGNIFIED, MISMATCH, MOTION_LOST, MOTION_TOO_LARGE, TOO_NOISY)


@dataclass(frozen=True)
class _Prepared:
    """Frames ``start:end`` of a batch, registered and moved back onto the reference (see
    :meth:`Engine._prepare`): host ``shifts`` px ``[n, 2]``, ``scores``, ``scale_checked`` and
    ``magnified`` (bool, see :meth:`Registration.magnified`), ``noise``, ``outliers``
    (their share of the bone pixels, see ``kernels.pixel_noise``), ``clipped``, the ``gain``
    of their contrast they were divided by and the ``measured_gain`` (see
    :meth:`DisplayGain.gains`) ``[n]``; device ``aligned`` and
    ``unmeasured`` (region of interest) and ``registered`` (registration grid) ``[n, ...]``, and
    the ``offset`` of their level taken out ``[n]``; ``collimated``: the frames (from 0) whose
    blades come near the body; ``coarse`` (the registration's images) and ``blades`` (per
    frame, from 0, the blades found), kept to check a frame's magnification again in
    :meth:`Engine._step` when the score level it was prepared against is not its own."""

    start: int
    end: int
    shifts: np.ndarray
    scores: np.ndarray
    scale_checked: np.ndarray
    magnified: np.ndarray
    noise: np.ndarray
    outliers: np.ndarray
    clipped: np.ndarray
    gain: np.ndarray
    measured_gain: np.ndarray
    collimated: set
    aligned: object
    registered: object
    unmeasured: object
    offset: object
    coarse: object
    blades: dict


class Engine:
    """Turns frames, in time order, into per-frame cement measures and alerts.

    The same object serves a finished study (fed batch after batch) and a live stream
    (fed one frame at a time); work per frame is bounded, history lives in
    :attr:`state` (:class:`EngineState`).

    Per frame: attenuation (log domain) -> motion against the reference (frame 0),
    measured on block means about ``registration_grid_mm`` wide (without the bone that
    collimator blades closed in during the run cover, see :mod:`._collimation`) -> from
    here on only the region of interest (the field within ``leak_search_margin_mm`` of the
    body; all of it without corners) is moved back onto the reference and worked on, read
    at the reference's level (a change of tube output, as automatic exposure control makes,
    moves a whole log-domain frame: the median difference over the registration bone is
    taken out), blades and their penumbra not measured (near the body: ``body_collimated``);
    a frame with many more sharp outliers on that bone than the pre-injection frames had
    (corrupt pixel data: ``image_artefacts``) is not used, nor one whose attenuation fell below
    the baseline over a cement-sized blob (part of it shifted: ``baseline_mismatch``; asked of
    every frame before the injection, after it of those the translation explains less well
    than the frames before; see :mod:`._baseline_match`) -> while no cement has appeared, the
    frame joins the pre-injection buffer, whose mean becomes the baseline at the first frame
    with a cement-sized blob (or when the buffer is full) -> cement segmented against the
    baseline and accumulated (:mod:`._segment`) -> measures against the corners and the alert
    (:mod:`._measure`).

    Parameters
    ----------
    config : RunConfig
        ``config.segmentation`` (engine parameters), ``config.reliability`` (when a frame
        cannot be trusted) and ``config.alerts`` (AlertThresholds), ``config.leaks``
        (LeakRules).
    rows, columns : int
        Frame size, px.
    mm_per_px : float or None
        Pixel size at the isocentre, mm; None when uncalibrated (every frame is then
        unreliable, reason ``no_calibration``; pixel measures are still given, with the
        rules sized in mm taken at the pixel size that makes the body 35 mm deep, 45 mm
        wide in the AP view, where that is a plausible one). Pixels so large that
        ``alerts.stop_mm`` spans fewer than ``reliability.min_stop_px`` of them put a doubt
        on every frame, reason ``pixels_too_coarse``.
    fov_mask : ndarray of bool, shape [rows, cols], optional
        Exposed field; everything when not given.
    corners : Corners, optional
        The treated vertebral body (WALL.json) in the image coordinates of
        ``corners_frame``; without them every frame is unreliable (``wall_not_found``).
        Their centre must lie on the image. Corners spanning no vertebral body's depth
        (10-80 mm) or height (3-60 mm) at ``mm_per_px`` put a doubt on every frame, as
        ``view`` "oblique" does, reason ``body_size_implausible``.
    corners_frame : int, optional
        Frame the corners were drawn on. They are moved onto the reference by that frame's
        registration, or, when that frame is unusable (clipped, lost, too noisy), by the
        first usable frame after it; until then the frames are measured against them as
        drawn, but unreliable (``wall_not_placed``): the body may have moved since.
    view : str, optional
        ``"lateral"``; ``"oblique"`` (measured as lateral, but the distance to the wall line
        is not the lateral view's: a frame that does not stop warns with ``oblique_view``
        after the reasons if it meets ``warn``, else is unreliable, reason
        ``oblique_view``); or ``"ap"`` (no wall distance: front_to_wall and depth are NaN).
    magnification_unknown : bool, optional
        ``mm_per_px`` is the detector's spacing (:attr:`vpimage.io.Geometry.magnification_unknown`):
        distances read too large, so frames are treated as the oblique view's, reason
        ``magnification_unknown``.
    needle_enters_anterior : bool, optional
        The needle enters the body through the side ``corners`` call anterior
        (:func:`vpimage.anatomy.needle_entry_side`): the posterior wall may be the anterior
        one, so frames are treated as the oblique view's, reason ``needle_enters_anterior``.
    white_level : float, optional
        Top of the stored pixel range, > 0 (:attr:`vpimage.io.Study.white_level`); by
        default the first frame's brightest exposed value rounded up to ``2**k - 1``. A
        first frame with exposed values above it, or none above 0, is refused
        (ArgumentError): it is on another scale.
    backend, device : str, optional
        Kernel backend and device (see :func:`vpimage.kernels.resolve`); :attr:`backend`
        and :attr:`device` say which were taken.

    Attributes
    ----------
    state : EngineState
        What the engine remembers between frames.
    registration : Registration or None
        Where the study's motion is measured and how (:mod:`._registration`), set up on the
        first frame; None before it.
    display : DisplayGain or None
        The contrast each frame's display shows against the reference (:mod:`._display`), set
        up on the first frame; None before it.
    roi : RegionOfInterest or None
        The box of the frame that everything after registration works on (:mod:`._region`),
        set up on the first frame; None before it.
    segmenter : Segmenter or None
        The cement segmentation against the baseline (:mod:`._segment`), set up on the first
        frame; None before it.
    baseline_match : BaselineMatch or None
        Whether a frame matches the frames its baseline is made of (:mod:`._baseline_match`),
        set up on the first frame; None before it.
    measurer : Measurer or None
        Each frame's measures and alert (:mod:`._measure`), set up on the first frame; None
        before it.
    denoiser : Denoiser
        The study's noise reduction (:mod:`._denoise`), chosen when the baseline is made.

    Notes
    -----
    Where the arrays live: the per-study set-up (the field, the registration and noise
    regions, the fill value, the white level) is computed once on the host; every
    per-frame image and the state (:class:`EngineState`) are arrays of the kernel
    backend on its device, and every operation on them is a kernel call or an array
    operator (``&``, ``|``, ``~``, ``-``). Frames go to the device once per batch (through
    pinned memory, non-blocking, on CUDA). Device -> host traffic, all of it
    (tests/engine/test_device_placement.py counts it once the baseline is frozen):

    - once per batch, the registration results and frame statistics (``[B]`` shifts,
      scores, clipped fractions, noise levels, outlier shares, darkened blocks of the field's edge) that
      decide whether a frame is reliable or shows collimator blades (the frames are
      aligned once the shifts are back: the region of interest is moved with a halo as
      wide as the largest shift), then the gains of the frames' contrast (``[B]``: the
      noise is read at the reference's contrast too, see :meth:`DisplayGain.gains`), and
      again, together, those of the frames whose gain is past the tolerance;
    - once per frame, the accumulated cement mask (``[rows, cols]`` bool) for the
      measures and the outputs;
    - while the baseline is open, whether cement appeared (one value per frame); once,
      when it is frozen, the pre-injection frames and the baseline, to choose the
      denoising filter and measure the noise map (on the host, so every backend chooses
      alike), and the frames' offsets of level if the first frame showed another
      contrast; then, until cement is first measured, whether any was found (one value
      per frame) and, once, its components;
    - for a frame whose field edge darkened, its blocks, to find collimator blades;
    - the torch kernels' convergence checks (a few scalars per call): ECC every few
      iterations, label propagation every few rounds.

    On the cpu the batch is prepared (attenuation, motion, alignment) two frames at a time,
    the next two by a worker thread of the engine while the main thread segments and
    measures these: the two cores share the work. The preparation reads no state that the
    segmentation changes (it is given the reference, the motion of the frame before and
    the corners), so the results are those of frames fed one at a time.
    """

    def __init__(
        self,
        config,
        *,
        rows: int,
        columns: int,
        mm_per_px: float | None,
        fov_mask: np.ndarray | None = None,
        corners: Corners | None = None,
        corners_frame: int = 0,
        view: str = "lateral",
        magnification_unknown: bool = False,
        needle_enters_anterior: bool = False,
        white_level: float | None = None,
        backend: str = "numpy",
        device: str | None = None,
    ):
        if not isinstance(config, RunConfig):
            raise ArgumentError(f"`config` must be a RunConfig; got {type(config).__name__}")
        for name, value in (("rows", rows), ("columns", columns)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"`{name}` must be a whole number >= 1; got {value!r}")
        if corners is not None and not isinstance(corners, Corners):
            raise ArgumentError(f"`corners` must be Corners or None (Corners.from_dict reads WALL.json's); "
                                f"got {type(corners).__name__}")
        self.config = config
        self.backend, self.device = resolve(backend, device)
        self.kernels = get_backend(self.backend, device=self.device)
        self._host = get_backend("numpy")  # host-side set-up and the measured mask
        for name, value in (("mm_per_px", mm_per_px), ("white_level", white_level)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ArgumentError(f"`{name}` must be None or a finite number > 0; got {value!r}")
        if corners is not None:
            x, y = corners.as_array().mean(axis=0)
            if not (0 <= x <= columns and 0 <= y <= rows):
                raise ArgumentError(f"the body's corners centre on ({x:g}, {y:g}) px, off the {columns} x {rows} px "
                                    "image (columns x rows): no wall in view to measure against")
        self.mm_per_px = None if mm_per_px is None else float(mm_per_px)
        self.fov_mask = np.ones((rows, columns), bool) if fov_mask is None else np.asarray(fov_mask, bool)
        if self.fov_mask.shape != (rows, columns):
            raise ArgumentError(f"`fov_mask` must be shaped {(rows, columns)}; got {self.fov_mask.shape}")
        if not self.fov_mask.any():
            raise ArgumentError("`fov_mask` exposes no pixel: nothing to measure")
        if view not in ("lateral", "oblique", "ap"):
            raise ArgumentError(f"`view` must be 'lateral', 'oblique' or 'ap'; got {view!r}")
        self.view = view
        # Why every frame's measures may understate the danger (see frame_level's caveat).
        self._doubts = tuple(
            name
            for name, applies in (
                (OBLIQUE_VIEW, view == "oblique"),
                (MAGNIFICATION_UNKNOWN, magnification_unknown),
                (NEEDLE_ENTERS_ANTERIOR, needle_enters_anterior),
                (BODY_SIZE_IMPLAUSIBLE, corners is not None and mm_per_px is not None
                 and not measures.plausible_body(corners, mm_per_px)),
                (PIXELS_TOO_COARSE, mm_per_px is not None
                 and config.alerts.stop_mm < config.reliability.min_stop_px * mm_per_px),
            )
            if applies
        )
        self.white_level = white_level
        self._fill = 0.0  # attenuation outside the field: the first frame's median inside it
        self._black = math.inf  # attenuation of a black pixel (the bottom of the stored range)
        self._fov = self._on_device(self.fov_mask)
        self._host_inner_fov = self._eroded(self.fov_mask, config.segmentation.field_margin_px)
        self._inner_fov = self._on_device(self._host_inner_fov)
        self._away_from_body: tuple[Corners, np.ndarray] | None = None
        # The body's (rows, cols) px and how deep inside the inner field its shallowest pixel lies, px.
        self._body_pixels: tuple[Corners, tuple[np.ndarray, np.ndarray], float] | None = None
        self.registration: Registration | None = None  # (set up on the first frame)
        self.display: DisplayGain | None = None  # (set up on the first frame)
        self.roi: RegionOfInterest | None = None  # (set up on the first frame)
        self.segmenter: Segmenter | None = None  # (set up on the first frame)
        self.baseline_match: BaselineMatch | None = None  # (set up on the first frame)
        self.measurer: Measurer | None = None  # (set up on the first frame)
        self._worker = None
        self._previous_shift = np.zeros(2)
        if self.device == "cpu":  # (see process; its thread ends when the engine is collected)
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpimage-prepare")
        seg = config.segmentation
        self.denoiser = Denoiser(
            self.kernels, median_px=seg.median_px, max_sigma_px=seg.max_smooth_px, min_alpha=seg.min_temporal_alpha
        )
        self._px_per_mm = 1.0 / _working_mm_per_px(self.mm_per_px, corners, view)
        self.state = EngineState(
            rows=rows,
            columns=columns,
            speed=measures.FrontSpeedEstimator(window_s=config.speed.window_s),
            alerts=AlertStateMachine(config.alerts),
            corners=corners,
            corners_anchor_frame=corners_frame if corners is not None and corners_frame != 0 else None,
            to_host=self.kernels.to_host,
        )
        self.state.on_device(self._on_device)

    # -- the public step ---------------------------------------------------------------

    @property
    def doubts(self) -> tuple[str, ...]:
        """Why every frame of the study may be worse than it measures, so far (names from
        :mod:`vpimage.alerts`: ``oblique_view``, ``white_level_unreached``, ...)."""
        return self._doubts

    def process(self, batch) -> list[EngineFrame]:
        """Analyse one batch of frames (the next in time order).

        Parameters
        ----------
        batch : FrameBatch
            ``frames`` float32 [B, rows, cols] (higher = brighter, as vpimage.io gives
            them), ``time_s`` float64 [B] from the first frame, ``index`` int [B].

        Returns
        -------
        list of EngineFrame, one per frame of the batch, in order.
        """
        if not all(hasattr(batch, name) for name in ("frames", "time_s", "index")):
            raise ArgumentError(f"`batch` must have frames, time_s and index, as a vpimage.io.FrameBatch has; "
                                f"got {type(batch).__name__}")
        try:
            host_frames = np.asarray(batch.frames, dtype=np.float32)
            time_s, index = np.asarray(batch.time_s, dtype=np.float64), np.asarray(batch.index, dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise ArgumentError(f"batch frames, time_s and index must be numbers: {error}") from None
        self._check_batch(host_frames, time_s, index)
        if not len(host_frames):
            return []
        k = self.kernels
        log_range = self.config.segmentation.display_log_range
        if self.white_level is None:
            self.white_level = self._host.stored_range_top(host_frames[0], self.fov_mask)
        if self.state.reference is None:
            self._check_scale(host_frames[0], int(index[0]))
            black = self._host.attenuation(np.zeros(1, np.float32), white_level=self.white_level, log_range=log_range)
            self._black = float(black[0])
            first = self._host.attenuation(host_frames[0], white_level=self.white_level, log_range=log_range)
            self._fill = float(np.median(first[self.fov_mask]))
        frames = k.to_device(host_frames, device=self.device)
        if self.state.reference is None:
            self._start(k.attenuation(frames[:1], white_level=self.white_level, log_range=log_range)[0])
        # Collimator blades darken the field's edge against the reference as the batch's
        # start sees it.
        seen = self.registration.seen(self.state.reference, self.state.shift_px, self.kernels)
        # On the cpu a worker thread registers and aligns the next few frames while these
        # are segmented and measured (on a GPU the batch is prepared at once).
        chunk = _CPU_CHUNK_FRAMES if self._worker is not None else len(host_frames)
        out: list[EngineFrame] = []
        while len(out) < len(host_frames):
            # The frames left, against the reference. When it becomes the baseline part-way,
            # the frames after that one are registered again.
            start, reference, corners = len(out), self.state.reference, self.state.corners
            ends = [*range(start + chunk, len(host_frames), chunk), len(host_frames)]
            prepared = self._prepare(
                frames, seen, start, ends[0], reference, self._previous_shift, self.state.display_gain,
                self._score_level(), corners,
            )
            for end in ends[1:] + [None]:
                ahead = None
                if end is not None:
                    ahead = self._worker.submit(
                        self._prepare, frames, seen, prepared.end, end, reference,
                        prepared.shifts[-1], prepared.measured_gain[-1], self._score_level(), corners,
                    )
                for j, i in enumerate(range(prepared.start, prepared.end)):
                    out.append(self._step(prepared, j, float(time_s[i]), int(index[i])))
                    if self.state.reference is not reference:
                        break
                if ahead is not None:
                    prepared = ahead.result()  # (also when the reference changed: the worker is done with it)
                if self.state.reference is not reference:
                    break
        return out

    def _check_batch(self, frames: np.ndarray, time_s: np.ndarray, index: np.ndarray) -> None:
        """Refuse a batch before any of it changes the state: frames not ``[B, rows, cols]``,
        times or indices not one per frame, times not finite or earlier than the frame before
        (a frame out of order would add its cement to the accumulation first)."""
        rows, columns = self.state.rows, self.state.columns
        if frames.ndim != 3 or frames.shape[1:] != (rows, columns):
            raise ArgumentError(f"batch frames must be shaped [B, {rows}, {columns}]; got {frames.shape}")
        if time_s.shape != (len(frames),) or index.shape != (len(frames),):
            raise ArgumentError(f"batch time_s and index must be one per frame ({len(frames)}); got shapes "
                                f"{time_s.shape} and {index.shape}")
        times = np.concatenate([[self.state.alerts.last_time_s], time_s])
        bad = ~np.isfinite(time_s) | (np.diff(times) < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ArgumentError(f"batch time_s must be finite and not decrease: frame {i} of the batch at "
                                f"{float(time_s[i]):g} s, after {float(times[i]):g} s")

    def _check_scale(self, first: np.ndarray, index: int) -> None:
        """Refuse a first frame (float32 [rows, cols]) that is not on the white level's scale:
        exposed values above ``white_level`` read brighter than white, where no cement can
        show (every frame would be ``ok``), a frame with no exposed value above 0 is no
        intensity image, and one with values below 0 (less than no light) neither: 10-bit
        data read as signed came from -512 to 511, its bright half below 0, and a disc
        leak read ``ok`` throughout. Doubt every frame (``white_level_unreached``) when its exposed
        values span under ``1 / _UNREACHED_WHITE`` of the white level: a header's stored
        range wider than the data's shrinks every contrast as many times (MONOCHROME1's
        inverted too), and cement is then seen late. Checked once, on the reference:
        vpimage.io gives frames and white level on one scale."""
        exposed = first[self.fov_mask]
        finite = np.isfinite(exposed).any()
        top, bottom = (float(np.nanmax(exposed)), float(np.nanmin(exposed))) if finite else (math.nan, math.nan)
        if top > self.white_level * (1 + 1e-6):
            raise ArgumentError(f"frame {index} holds values up to {top:g}, above `white_level` {self.white_level:g}: "
                                "the frames and the white level are not on one scale")
        if not top > 0:
            raise ArgumentError(f"frame {index} has no finite exposed value above 0: frames must be intensities, "
                                "higher = brighter (as vpimage.io gives them)")
        if bottom < -self.white_level * 1e-6:
            raise ArgumentError(f"frame {index} holds values down to {bottom:g}, below 0 (no light): frames must be "
                                "intensities, 0 = black (unsigned data read as signed wraps its brightest to below 0)")
        if (top - bottom) * _UNREACHED_WHITE < self.white_level:
            self._doubts += (WHITE_LEVEL_UNREACHED,)

    def _prepare(
        self, frames, seen, start: int, end: int, reference, previous_shift: np.ndarray, previous_gain: float,
        score_level: float, corners,
    ) -> _Prepared:
        """Frames ``start:end`` of a batch on the device (pixel values ``[B, rows, cols]``) in
        attenuation, registered on ``reference`` and moved back onto it.

        ``seen``: the reference as the batch's start sees it (see :meth:`Registration.seen`);
        ``previous_shift`` (px) and ``previous_gain``: the shift and the measured display gain
        of the frame before ``start`` (NaN: none against this reference); ``score_level``: the
        registration score of the frames before (see :meth:`_score_level`); ``corners``: the body
        then. Reads no state that the segmentation changes (a worker thread runs it meanwhile).
        """
        k, reg = self.kernels, self.registration
        frames = frames[start:end]
        # (Off the field only the region of interest is filled in, in _aligned: motion and
        # noise are measured far inside the field.)
        attenuation = k.attenuation(
            frames, white_level=self.white_level, log_range=self.config.segmentation.display_log_range
        )
        coarse = k.block_mean(attenuation, factor=reg.factor)
        clipped = k.clipped_fraction(frames, self._fov)
        noise, outliers = k.pixel_noise(attenuation, weight=reg.weight)
        # (A whole frame darkened, as a change of tube output or of display gain makes, is no
        # blade: the edge is compared at the reference's level. Its contrast, measured before
        # registration, is not to be trusted: the estimate reads breathing as lost contrast.)
        level = k.exposure_offset(coarse, seen, weight=reg.level_weight)[:, None, None]
        edge_hits = reg.collimation.edge_hits(coarse - level, seen, reg.edge)
        clipped, noise, outliers, edge_hits = k.to_host(clipped), k.to_host(noise), k.to_host(outliers), k.to_host(edge_hits)
        # Frames whose field edge darkened: searched for collimator blades.
        examined = np.flatnonzero(edge_hits >= reg.collimation.min_hits)
        shifts, scores, blades = reg.register(coarse, examined, reference, previous_shift)
        scale_checked = reg.score_fell(scores, score_level)
        magnified = reg.magnified(coarse, reference, shifts, scores, scale_checked, blades)
        for j, found in blades.items():  # the noise and clipping of the field the blades leave
            exposed = self._on_device(~reg.pixels_of(found))
            bone = reg.weight & exposed
            noise_left, outliers_left = k.pixel_noise(attenuation[j : j + 1], weight=bone)
            noise[j], outliers[j] = k.to_host(noise_left)[0], k.to_host(outliers_left)[0]
            clipped[j] = k.to_host(k.clipped_fraction(frames[j : j + 1], self._fov & exposed))[0]
        aligned, registered, unmeasured, collimated, gain, measured_gain, offset = self._on_reference(
            attenuation, coarse, frames, shifts, reference, blades, corners, previous_gain
        )
        # Read at the reference's contrast, the noise too; a frame with no contrast left is too noisy.
        noise = np.divide(noise, gain, out=np.full_like(noise, np.inf), where=gain > 0)
        return _Prepared(
            start, end, shifts, scores, scale_checked, magnified, noise, outliers, clipped, gain, measured_gain,
            collimated, aligned, registered, unmeasured, offset, coarse, blades,
        )

    def _score_level(self) -> float:
        """The median registration score of the last frames measured against the reference
        (:data:`_SCORE_LEVEL_FRAMES`, those it could use and did not fit a magnification: the
        level follows a score that falls slowly, as cement entering the bone lowers it, not one
        that fell at once); NaN before the first (the first frames against a reference are not
        checked: they set the level)."""
        scores = self.state.registration_scores
        return float(np.median(scores)) if scores else math.nan

    # -- set-up --------------------------------------------------------------------------

    def _on_reference(self, attenuation, coarse, frames, shifts: np.ndarray, reference, blades, corners, previous_gain):
        """Frames moved back onto ``reference`` by their host ``shifts`` ``[B, 2]`` (px) and read at
        its contrast and level.

        ``attenuation`` ``[B, rows, cols]``, ``coarse`` (the same on the registration grid)
        and ``frames`` (the pixel values) give the region of interest ``[B, roi_rows,
        roi_cols]``, the registration grid, the region's pixels not measured (bool), the
        set of frames whose collimator blades come near the body (``corners``), the host
        gains ``[B]`` the frames were divided by and those measured (see :meth:`DisplayGain.gains`;
        ``previous_gain``: the frame's before the first) and the offsets of level then taken
        out (device, ``[B]``). ``blades``: the frames with collimator blades, and the blocks
        they cover (detector coordinates).

        A change of the display's gain scales a log-encoded frame's contrast: the frame is
        divided by its gain. A change of tube output (automatic exposure control) moves a
        whole log-domain frame: the median difference to the reference over the bone
        motion is measured on is taken out. A clipped pixel only bounds its truth: black
        stays at the bottom of the reference's range (what lies beyond it is not known in the
        baseline either, so a change of level may not bring it into view), and white, with
        what the bicubic's taps take from it, is not measured (an upper bound: cement there
        cannot be told)."""
        k, reg = self.kernels, self.registration
        registered = k.shift_images(coarse, self._on_device(-shifts / reg.factor), order=3)
        bone_left = {  # (frames with collimator blades: measured on the bone they leave)
            j: self._on_device(reg.collimation.bone_left(reg.host_mask, found, shifts[j] / reg.factor))
            for j, found in blades.items()
        }
        gain, measured_gain = self.display.gains(registered, reference, bone_left, previous_gain)
        aligned = self._aligned(attenuation, shifts, order=3)
        if (gain != 1.0).any():
            scale = self._on_device(np.divide(1.0, gain, out=np.ones_like(gain), where=gain > 0).astype(np.float32))
            registered, aligned = registered * scale[:, None, None], aligned * scale[:, None, None]
        offset = k.exposure_offset(registered, reference, weight=reg.mask)
        for j, bone in bone_left.items():
            offset[j] = k.exposure_offset(registered[j : j + 1], reference, weight=bone)[0]
        aligned = (aligned - offset[:, None, None]).clip(max=self._black)
        unmeasured = self._white_reach(frames, shifts)
        registered = registered - offset[:, None, None]
        collimated = set()
        if blades:  # (off its field the reference reads as the field's middle: a blade darkens against it)
            reference = k.mask_field(reference, reg.field, fill=self._fill)
        for j in blades:
            seen = reg.collimation.covered(k.to_host(registered[j] - reference), shifts[j] / reg.factor)
            if seen is not None:
                covered = self.roi.crop(reg.pixels_of(seen))
                unmeasured[j] |= self._on_device(covered)
                if (covered & self._near_body(corners)).any():
                    collimated.add(j)
        return aligned, registered, unmeasured, collimated, gain, measured_gain, offset

    def _white_reach(self, frames, shifts: np.ndarray):
        """The region of interest's pixels ``[B, roi_rows, roi_cols]`` (bool) that a white pixel of
        ``frames`` (the pixel values), moved back by their host ``shifts`` ``[B, 2]`` (px), reaches
        through the bicubic's taps: not measured."""
        k = self.kernels
        box, _ = self.roi.halo(shifts)
        if k is self._host and not (frames[(slice(None),) + box] >= self.white_level).any():
            return np.zeros((len(frames), *self.roi.shape), bool)  # (none near: nothing to move)
        white = self._aligned(frames, shifts, order=0) >= self.white_level  # (nearest neighbour keeps values)
        return k.binary_dilation(white, iterations=_BICUBIC_REACH_PX)

    def _near_body(self, corners: Corners | None) -> np.ndarray:
        """The region of interest's pixels within ``reliability.collimator_clearance_mm`` of the body
        ``corners`` (host, bool; none without corners)."""
        if corners is None:
            return np.zeros(self.roi.shape, bool)
        clearance_px = self.config.reliability.collimator_clearance_mm * self._px_per_mm
        return self.roi.crop(self._away_from_body_px(corners)) <= clearance_px

    def _away_from_body_px(self, corners: Corners) -> np.ndarray:
        """Distance of every pixel to the body ``corners`` (host, px, ``[rows, cols]``, 0 inside),
        kept for the corners last asked for (those of the set-up until they move)."""
        if self._away_from_body is None or self._away_from_body[0] is not corners:
            body = measures.body_mask(corners, (self.state.rows, self.state.columns))
            self._away_from_body = (corners, ndi.distance_transform_edt(~body))
        return self._away_from_body[1]

    def _aligned(self, images, shifts: np.ndarray, *, order: int):
        """``images`` ``[B, rows, cols]`` moved back by their host ``shifts`` ``[B, 2]`` (px), in the region
        of interest.

        Only the region and a halo as wide as the largest shift (and the interpolation's
        reach) is moved: inside the region this is the whole frame moved, then cropped.
        Attenuation images are first set to the fill value off the field there (masks
        are moved as they are).
        """
        box, inner = self.roi.halo(shifts)
        halo = images[(slice(None),) + box]
        if order > 0:
            halo = self.kernels.mask_field(halo, self._fov[box], fill=self._fill)
        moved = self.kernels.shift_images(halo, self._on_device(-shifts), order=order)
        return moved[(slice(None),) + inner]

    def _on_device(self, array: np.ndarray):
        return self.kernels.to_device(array, device=self.device)

    def _eroded(self, mask: np.ndarray, iterations: int) -> np.ndarray:
        """``mask`` eroded by the cross ``iterations`` times (host; 0: unchanged)."""
        return self._host.binary_erosion(mask, iterations=iterations) if iterations > 0 else mask.copy()

    def _start(self, first) -> None:
        """Take the first frame as the reference and set the study up on it (on the host): the pixels
        to register on, the region of interest, the noise region, and what works on that region."""
        seg = self.config.segmentation
        shape = (self.state.rows, self.state.columns)
        exposed = self.fov_mask.sum()
        # (Eroded farther than the frame is wide, nothing is left: no more passes than that.)
        margin_px = min(int(math.ceil(seg.registration_margin_mm * self._px_per_mm)) + 4, max(shape))
        inner = self._eroded(self.fov_mask, margin_px)
        if inner.sum() < _MIN_REGISTRATION_SHARE * exposed:  # a small field: keep what it has
            inner = self._eroded(self.fov_mask, 4)
        weight = inner
        if self.state.corners is not None:
            away = self._away_from_body_px(self.state.corners) / self._px_per_mm
            # Bone far from the body if there is enough of it, else nearer (never the body itself).
            for margin_mm in (seg.registration_body_margin_mm, seg.registration_body_margin_mm / 2, 0.0):
                weight = inner & (away > margin_mm)
                if weight.sum() >= _MIN_REGISTRATION_SHARE * exposed:
                    break
        if not weight.any():
            weight = self.fov_mask.copy()
        self._set_region_of_interest(away if self.state.corners is not None else None)
        factor = min(max(int(seg.registration_grid_mm * self._px_per_mm), 1), min(shape))
        self.registration = reg = Registration(
            self.kernels, self._host, weight=weight, inner_field=self._host_inner_fov, factor=factor,
            px_per_mm=self._px_per_mm, reliability=self.config.reliability, fill=self._fill, to_device=self._on_device,
        )
        self.display = DisplayGain(
            self.kernels, reg.mask, tolerance=seg.display_gain_tolerance,
            kept_tolerance=seg.display_gain_kept_tolerance, to_device=self._on_device,
        )
        self.state.reference = self.kernels.block_mean(first, factor=reg.factor)
        # The filter is chosen for the noise where the cement will be: the body (else the bone).
        self._noise_region = weight
        if self.state.corners is not None:
            body = measures.body_mask(self.state.corners, shape) & self._host_inner_fov
            if body.sum() >= seg.min_area_px:
                self._noise_region = body
        self._noise_region = self.roi.crop(self._noise_region)
        # What works on the region of interest: the segmentation, the baseline checks, the measures.
        self.segmenter = Segmenter(
            self.kernels, self.config, self.denoiser, self.roi,
            adjacent_px=int(round(seg.adjacent_blob_mm * self._px_per_mm)),
            # Where sharp bone edges raise the threshold in full: away from the body; where a
            # leak's thin channel is looked for: beyond the body's outline.
            sharp_edge_region=None if self.state.corners is None else self.roi.crop(away > seg.sharp_edge_margin_mm),
            outside_body=None if self.state.corners is None else self.roi.crop(away > 0),
            to_device=self._on_device,
        )
        self.baseline_match = BaselineMatch(
            self.kernels, self.config, self.denoiser, self.segmenter, noise_region=self._noise_region,
            min_snr=_SNR_HEADROOM * self.config.reliability.min_snr,
        )
        self.measurer = Measurer(
            self.config, self.roi, view=self.view, mm_per_px=self.mm_per_px, px_per_mm=self._px_per_mm
        )

    def _set_region_of_interest(self, away_mm: np.ndarray | None) -> None:
        """Where cement is looked for: the field within the leak search margin of the body (all of it without one).

        ``away_mm`` is the distance to the body, mm [rows, cols] (None: no body). Corners
        drawn on a later frame move by up to the largest motion followed when it comes,
        so the margin grows by that until then.
        """
        seg, st = self.config.segmentation, self.state
        search = self.fov_mask.copy()
        if away_mm is not None:
            pending = seg.registration_margin_mm if st.corners_anchor_frame is not None else 0.0
            search &= away_mm <= seg.leak_search_margin_mm + pending
        self.roi = RegionOfInterest.around(search)
        self._search = self._on_device(self.roi.crop(search & self._host_inner_fov))
        st.new_blobs = self._on_device(np.zeros(self.roi.shape, bool))

    def _freeze_baseline(self):
        """The mean of the pre-injection frames becomes the baseline, which fixes the segmentation's
        maps (:attr:`EngineState.maps`); the buffer is dropped.

        Returns how a frame read against the reference until now is read against the new
        one: ``(level, gain)``, ``(aligned + level) * gain``.

        The buffered frames were read at the first frame's contrast and level. When more than
        half of them had to be divided by a gain, it was the first frame that showed another
        contrast (its display's), or the display changed since: they are read back at the
        contrast (:attr:`PreInjectionBuffer.shown_gain`) and level the divided frames showed.
        """
        k, seg, st = self.kernels, self.config.segmentation, self.state
        buffer = st.pre_injection
        level, gain = 0.0, buffer.shown_gain
        if gain != 1.0:
            divided = [offset for g, offset in zip(buffer.gain, buffer.offset) if g != 1.0]
            level = float(np.median([k.to_host(offset) for offset in divided]))
            buffer.read_at(level, gain)
        left_out = self.baseline_match.leave_out_mismatched(buffer)
        if left_out:
            st.baseline_left_out.extend(left_out)
            st.outlier_reference = buffer.outlier_share
        st.baseline, st.baseline_frames = k.mean_frames(buffer.frames), len(buffer)
        st.reference = k.mean_frames(buffer.coarse)
        st.display_gain = math.nan  # (the frames after are measured against the new reference)
        st.registration_scores = []
        self.display.rebase(buffer.coarse, st.reference)
        # The filter and the noise map are chosen on the host (once per study), the same
        # on every backend. Headroom over the frame-by-frame limit, so that noise
        # fluctuations do not flap.
        pre_injection = [k.to_host(frame) for frame in buffer.frames]
        measured = self._noise_region & k.to_host(buffer.inside)  # (clipped white and its reach: no noise)
        self.denoiser.fit(
            pre_injection,
            measured if measured.any() else self._noise_region,
            pixel_noise=float(np.mean(buffer.noise)),
            contrast=seg.cement_contrast,
            min_snr=_SNR_HEADROOM * self.config.reliability.min_snr,
        )
        st.maps = self.segmenter.maps(st.baseline, pre_injection, buffer.inside)
        st.pre_injection = PreInjectionBuffer()
        return level, gain

    # -- one frame -----------------------------------------------------------------------

    def _problem(self, shift, score, magnified, clipped, noise, outliers) -> str:
        """Why a frame cannot be trusted, or '' when it can."""
        rel = self.config.reliability
        st = self.state
        if clipped > rel.max_saturated_fraction:
            return CLIPPED
        # Outliers are counted on the bone motion is measured on, away from the body when its
        # corners are known; without them that bone holds the body, where dense cement starves
        # pixels of quanta (outliers of its own). Before the first pre-injection frame there is no
        # reference: that frame is its own.
        reference = st.outlier_reference if st.corners is not None else None
        if reference is not None and outliers - reference > rel.max_outlier_rise:
            return ARTEFACTS
        if magnified:
            return MAGNIFIED
        if score < rel.min_registration_score:
            return MOTION_LOST
        if np.hypot(*shift) / self._px_per_mm > self.config.segmentation.registration_margin_mm:
            return MOTION_TOO_LARGE
        if np.hypot(*(shift - st.shift_px)) / self._px_per_mm > rel.max_motion_mm:
            return MOTION_JUMP
        # (Noise that could not be measured, as on a frame whose blades leave no bone, is no less.)
        filtered = self.denoiser.noise_now(noise)
        if not np.isfinite(filtered) or self.config.segmentation.cement_contrast < rel.min_snr * filtered:
            return TOO_NOISY
        if st.corners is None:
            return WALL_NOT_FOUND
        if self.mm_per_px is None:
            return NO_CALIBRATION
        return ""

    def _step(self, prepared: _Prepared, j: int, time_s: float, index: int) -> EngineFrame:
        """Frame ``j`` of ``prepared``, on the reference and at its level (see :class:`_Prepared`)."""
        st, match = self.state, self.baseline_match
        shift, noise = prepared.shifts[j], prepared.noise[j]
        self._previous_shift = shift  # (the frame before the next, as the worker gives it: usable or not)
        st.display_gain = prepared.measured_gain[j]
        score = prepared.scores[j]
        # (The score level is the frames' before this one, whatever the batch: the worker
        # prepared it against an older level, or none.)
        checked = bool(self.registration.score_fell(np.array([score]), self._score_level())[0])
        magnified = bool(prepared.magnified[j])
        if checked != bool(prepared.scale_checked[j]):
            blades = {0: prepared.blades[j]} if j in prepared.blades else {}
            magnified = checked and bool(self.registration.magnified(
                prepared.coarse[j : j + 1], st.reference, prepared.shifts[j : j + 1], prepared.scores[j : j + 1],
                np.array([True]), blades)[0])
        problem = self._problem(shift, score, magnified, prepared.clipped[j], noise, prepared.outliers[j])
        problem = problem or (BODY_COLLIMATED if j in prepared.collimated else "")
        aligned, registered, white = prepared.aligned[j], prepared.registered[j], prepared.unmeasured[j]
        if problem not in _UNUSABLE:
            # Pixels this frame exposes well inside the field and measures, in reference coordinates.
            inside = self._search & self._aligned(self._inner_fov[None], shift[None], order=0)[0] & ~white
            if st.injecting:
                asked = checked
                appeared, fell = False, asked and match.fell_below_baseline(st.baseline, st.maps, aligned, inside)
            else:
                appeared, fell = match.against_buffer(st.pre_injection, aligned, inside)
            problem = MISMATCH if fell else problem
        if problem in _UNUSABLE:
            # The image cannot be compared with the baseline: keep what was accumulated.
            shift = st.shift_px
        else:
            if not checked:
                st.registration_scores = [*st.registration_scores[1 - _SCORE_LEVEL_FRAMES :], score]
            st.shift_px = shift
            self._anchor_corners(index, shift)
            if st.injecting:
                self.segmenter.accumulate(st, aligned, inside, time_s)
            elif appeared:
                level, gain = self._freeze_baseline()
                first = (aligned + level) * gain if gain != 1.0 else aligned
                # (Against the buffer the excess was filtered as for the noisiest study, which
                # smooths a part of the frame shifted by a pixel or two into cement alone: asked
                # again against the baseline, filtered as the study's noise needs.)
                if match.fell_below_baseline(st.baseline, st.maps, first, inside):
                    problem = MISMATCH
                else:
                    self.segmenter.accumulate(st, first, inside, time_s)
            elif problem not in _IMAGE_PROBLEMS:
                self._add_pre_injection(prepared, j, inside, index)
        if st.corners_anchor_frame is not None:  # (measured against corners not yet on these images)
            problem = problem or WALL_NOT_PLACED
        # A body part of which the frame does not show (a shutter or the field's edge through it,
        # WALL.json drawn there): cement there, nearest the wall, is not seen; a doubt, so that a
        # met warn or stop stands and nothing else reads ok.
        off_field = not problem and st.corners is not None and self._body_off_field(shift)
        doubts = self._doubts + ((BODY_COLLIMATED,) if off_field else ())
        return self.measurer.measure(st, time_s, index, shift, problem, caveat="; ".join(doubts))

    def _body_off_field(self, shift: np.ndarray) -> bool:
        """Whether a frame moved by ``shift`` (host ``(dy, dx)`` px) leaves a pixel of the body
        (the state's corners) off its inner field (the field less its rim), nearest pixel.

        A body whose every pixel lies farther inside the field than the shift reaches (its
        length, plus half a pixel's diagonal for the rounding) cannot leave it: only a shift
        near that depth, or a body at the field's edge, has its pixels looked up."""
        corners = self.state.corners
        if self._body_pixels is None or self._body_pixels[0] is not corners:
            body = self._away_from_body_px(corners) <= 0
            depth = ndi.distance_transform_edt(self._host_inner_fov)[body]  # (px to the nearest unseen pixel)
            self._body_pixels = (corners, np.nonzero(body), float(depth.min()) if depth.size else 0.0)
        _, (rows, cols), depth = self._body_pixels
        if math.hypot(*shift) + math.sqrt(0.5) < depth:
            return False
        seen_rows = np.clip(np.rint(rows + shift[0]).astype(np.intp), 0, self.state.rows - 1)
        seen_cols = np.clip(np.rint(cols + shift[1]).astype(np.intp), 0, self.state.columns - 1)
        return not bool(self._host_inner_fov[seen_rows, seen_cols].all())

    def _anchor_corners(self, index: int, shift: np.ndarray) -> None:
        """Move corners drawn on a later frame onto the reference when that frame arrives, or
        the first usable frame after it (this one) when it could not be registered."""
        st = self.state
        if st.corners_anchor_frame is not None and index >= st.corners_anchor_frame:
            st.corners = st.corners.translated(-shift[1], -shift[0])
            st.corners_anchor_frame = None

    def _add_pre_injection(self, prepared: _Prepared, j: int, inside, index: int) -> None:
        """Buffer frame ``j`` of ``prepared`` (``inside``: the pixels it measures; ``index``: its
        frame index); the baseline is frozen once the buffer is full."""
        k, st = self.kernels, self.state
        st.pre_injection.add(
            k.copy(prepared.aligned[j]), k.copy(prepared.registered[j]), inside,  # (not views of the whole batch)
            noise=prepared.noise[j], outliers=prepared.outliers[j], gain=prepared.gain[j],
            offset=prepared.offset[j], index=index,
        )
        st.outlier_reference = st.pre_injection.outlier_share
        if len(st.pre_injection) >= self.config.segmentation.baseline_frames_max:
            self._freeze_baseline()
