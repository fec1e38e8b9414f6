"""The phantom's entry point: simulate a vertebroplasty fluoroscopy run with its ground truth.

Examples
--------
>>> from vpimage.synth._phantom import simulate, SynthOptions
>>> result = simulate("no_leak", seed=1, options=SynthOptions(size_px=96, frames=8))
>>> result.run.frames.shape, result.cement_masks.shape
((8, 96, 96), (8, 96, 96))
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vpimage._atomic import atomic_path, write_text_atomic
from vpimage.errors import ConfigError
from vpimage.synth._anatomy import make_spine
from vpimage.synth._bone import bone_projection
from vpimage.synth._cement import project_fill
from vpimage.synth._imaging import (
    DOSE_QUANTA,
    ViewTransform,
    detector_geometry,
    frame_times,
    make_field,
    motion_mm,
    narrowed_field,
    tube_output,
)
from vpimage.synth._needle import place_needle
from vpimage.synth._render import MU_CEMENT_EXCESS_PER_MM, Projection, render
from vpimage.synth._run import FluoroRun
from vpimage.synth._scenarios import SCENARIOS, cement_grid, grow, plan_scenario
from vpimage.synth._truth import CORNER_NAMES, VISIBILITY_FLOOR_MM, frame_records, leak_seen

__all__ = ["SCENARIOS", "SynthOptions", "SynthResult", "simulate"]

logger = logging.getLogger(__name__)

_MIN_BONE_SPACING_MM = 0.1  # the bone's projection is sampled at half a pixel, no finer
_FRONT_SPEED_MM_S = (0.7, 2.9)  # range of the average front speed the injection rate keeps
_FILL_SHARE = 0.85  # share of the clip after the pre-injection frames used to reach the end state
_WITHDRAWAL_MM = (3.0, 8.0)  # how far ``needle_withdrawal`` pulls the tip back along the shaft, mm
#: What a narrowed collimator leaves in view around the body and the cement, mm.
COLLIMATION_KEEP_MM = 10.0
#: The most memory a run may take, bytes: it bounds ``frames`` for a given ``size_px``.
MEMORY_LIMIT_BYTES = 4 * 2**30
# The memory a run takes per frame: the arrays of the image (stored frames, cement thickness,
# needle, leak and truth masks, the pixel data as encoded: 11-14 bytes a pixel measured, the
# most with the deflated syntax) and those of the projected cement (counts, their sum and its
# thickness on the 0.5 mm grid: about 280 KiB measured).
_BYTES_PER_PIXEL = 16
_CEMENT_BYTES_PER_FRAME = 2**19


@dataclass(frozen=True)
class SynthOptions:
    """How to image the phantom (everything except the scenario and the seed).

    Attributes
    ----------
    size_px : int
        Rows and columns of the square image, 64-2048 (the field at the isocentre is
        112-128 mm across whatever the size).
    frames : int
        Number of frames, >= 2, and at most :func:`max_frames` for ``size_px`` (a run
        must fit in :data:`MEMORY_LIMIT_BYTES`: 7281 at 64 px, 1985 at 320, 63 at 2048).
    fps : float
        Nominal frame rate, 1-60 frames per second.
    view : {"lateral", "ap"}
    tilt_deg : float
        In-plane tilt of the spine, 0-25 degrees.
    dose : {"high", "normal", "low", "noiseless"}
        Quanta per pixel; ``"noiseless"`` is normal dose without Poisson noise (for tests).
    photometric : {"MONOCHROME2", "MONOCHROME1"}
    field : {"circle", "rectangle"}
        Intensifier circle (black outside) or collimator blades (very dark outside).
    breathing : bool
        Smooth breathing motion (1-2 mm, period 3-5 s).
    sudden_shift : bool
        One 3-6 mm jump of the patient at a random frame of the injection phase (between
        the third frame after the pre-injection frames and the second-last frame).
    jitter : bool
        Jittered frame times (up to 20 % of the interval).
    exposure_changes : bool
        Tube output changing from frame to frame as automatic exposure control makes it
        (3 % from pulse to pulse, one step of 10-30 % up or down at a random frame of the
        injection phase, as ``sudden_shift`` chooses it); the display keeps the first
        frame's mapping, so a whole frame reads shifted by the log of its output ratio.
    collimation_change : bool
        The collimator blades close in once, at a random frame of the injection phase (as
        ``sudden_shift`` chooses it): each side by 30-100 % of the room it has before the
        vertebral body and all the run's cement, with :data:`COLLIMATION_KEEP_MM` and the
        patient's motion around them, so what the analysis needs stays in view.
    needle_withdrawal : bool
        The operator pulls the needle back once, at a random frame of the injection phase
        (as ``sudden_shift`` chooses it), as many do to fill the body's posterior part: its
        tip moves 3-8 mm back along the shaft. The cement still grows from the first tip
        (the run's cement is planned before it is imaged).
    bits_stored : int
        10-12.
    pre_injection_frames : int
        Frames before the injection starts, 1 to ``frames - 1``.
    blur_px : float
        Detector blur, Gaussian sigma in pixels, 0-3.
    """

    size_px: int = 320
    frames: int = 60
    fps: float = 5.0
    view: str = "lateral"
    tilt_deg: float = 0.0
    dose: str = "normal"
    photometric: str = "MONOCHROME2"
    field: str = "circle"
    breathing: bool = True
    sudden_shift: bool = False
    jitter: bool = False
    exposure_changes: bool = False
    collimation_change: bool = False
    needle_withdrawal: bool = False
    bits_stored: int = 12
    pre_injection_frames: int = 5
    blur_px: float = 0.7

    def __post_init__(self):
        def check(ok: bool, name: str, rule: str):
            if not ok:
                raise ConfigError(f"synth option `{name}` = {getattr(self, name)!r}: {rule}")

        check(_is_int(self.size_px) and 64 <= self.size_px <= 2048, "size_px", "must be an integer in 64..2048")
        check(_is_int(self.frames) and self.frames >= 2, "frames", "must be an integer >= 2")
        most = max_frames(self.size_px)
        memory = f"a run must fit in {MEMORY_LIMIT_BYTES / 2**30:g} GiB of memory"
        check(self.frames <= most, "frames", f"must be at most {most} at size_px {self.size_px}: {memory}")
        check(_is_number(self.fps) and 1.0 <= self.fps <= 60.0, "fps", "must be in 1..60")
        check(self.view in ("lateral", "ap"), "view", "must be 'lateral' or 'ap'")
        check(_is_number(self.tilt_deg) and 0.0 <= self.tilt_deg <= 25.0, "tilt_deg", "must be in 0..25")
        check(self.dose in DOSE_QUANTA, "dose", f"must be one of {sorted(DOSE_QUANTA)}")
        check(self.photometric in ("MONOCHROME1", "MONOCHROME2"), "photometric", "must be MONOCHROME1 or 2")
        check(self.field in ("circle", "rectangle"), "field", "must be 'circle' or 'rectangle'")
        flags = ("breathing", "sudden_shift", "jitter", "exposure_changes", "collimation_change", "needle_withdrawal")
        for name in flags:
            check(isinstance(getattr(self, name), bool), name, "must be True or False")
        check(_is_int(self.bits_stored) and 10 <= self.bits_stored <= 12, "bits_stored", "must be in 10..12")
        check(_is_int(self.pre_injection_frames) and self.pre_injection_frames >= 1, "pre_injection_frames", "must be an integer >= 1")
        check(
            self.frames > self.pre_injection_frames,
            "frames",
            f"must be at least {self.pre_injection_frames + 1}: {self.pre_injection_frames} pre-injection frames, then cement",
        )
        check(_is_number(self.blur_px) and 0.0 <= self.blur_px <= 3.0, "blur_px", "must be in 0..3")
        check(
            not self.sudden_shift or self.frames >= self.pre_injection_frames + 4,
            "sudden_shift",
            "needs at least 4 frames after the pre-injection frames (the jump falls inside the injection)",
        )


def max_frames(size_px: int) -> int:
    """The most frames a run of ``size_px`` rows and columns may have: as many as fit in
    :data:`MEMORY_LIMIT_BYTES`."""
    return MEMORY_LIMIT_BYTES // (_BYTES_PER_PIXEL * size_px**2 + _CEMENT_BYTES_PER_FRAME)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and np.isfinite(x)


@dataclass
class SynthResult:
    """A simulated run with its ground truth.

    Attributes
    ----------
    run : FluoroRun
        Stored frames ``[frames, rows, cols]`` uint16, times, geometry, field.
    truth : dict
        JSON-ready truth (CONTRACT.md "Truth files", plus extras).
    cement_masks : ndarray, bool, shape [frames, rows, cols]
        Where the projected cement thickness exceeds the visibility floor (cement only).
    cement_thickness_mm : ndarray, float32, shape [frames, rows, cols]
        Projected cement thickness along the beam, mm.
    needle_masks : ndarray, bool, shape [frames, rows, cols]
        Where the beam crosses the trocar's steel.
    """

    run: FluoroRun
    truth: dict
    cement_masks: np.ndarray
    cement_thickness_mm: np.ndarray
    needle_masks: np.ndarray = field(repr=False)

    def save_truth(self, path) -> Path:
        """Write the truth JSON to ``path`` and the masks beside it as ``<stem>_masks.npz``.

        The npz holds ``masks`` (bool ``[frames, rows, cols]``, compressed); the JSON names
        it in ``masks_file`` (relative to the JSON's folder). Returns the JSON's path.
        """
        path = Path(path)
        masks_path = self.masks_path(path)
        with atomic_path(masks_path) as temporary:
            np.savez_compressed(temporary, masks=self.cement_masks)
        truth = dict(self.truth, masks_file=masks_path.name)
        write_text_atomic(path, json.dumps(truth, indent=1))
        return path

    @staticmethod
    def masks_path(truth_path) -> Path:
        """Where :meth:`save_truth` writes the masks of the truth JSON ``truth_path``."""
        truth_path = Path(truth_path)
        return truth_path.with_name(f"{truth_path.stem}_masks.npz")

    def save_wall(self, path) -> Path:
        """Write WALL.json: the treated body's corners at frame 0."""
        path = Path(path)
        write_text_atomic(path, json.dumps({"frame": 0, "vertebral_body": self.truth["vertebral_body"]}, indent=1))
        return path


def simulate(scenario: str, *, seed: int = 0, options: SynthOptions = SynthOptions()) -> SynthResult:
    """Simulate fluoroscopy of a vertebroplasty injection, with its ground truth.

    Parameters
    ----------
    scenario : str
        One of :data:`SCENARIOS`.
    seed : int
        Draws anatomy, needle, cement, geometry, motion and noise; same seed and options
        give identical arrays (the anatomy and cement depend on the seed only).
    options : SynthOptions

    Returns
    -------
    SynthResult

    Raises
    ------
    ConfigError
        Unknown scenario, negative seed, or bad options.

    Notes
    -----
    The injection runs at a constant volume rate chosen so that the scenario's end state
    is reached at 85 % of the time after the pre-injection frames, with the average speed
    of the cement front in the body (its farthest point from the tip) kept within
    0.7-2.9 mm/s; a leak fills its compartment at its own constant rate. When
    the clip is too short for that, the clip ends before the end state: the truth holds
    what the clip shows and ``injection.end_state_reached`` is false (a leak may then never
    show). Every scenario reaches its end state when the clip lasts at least 11 s after
    its last pre-injection frame (the default 60 frames at 5 fps do); ``no_leak`` needs
    about 5 s, the leaks 7-8 s, ``posterior_approach`` and ``posterior_breach`` up to 11 s.
    """
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown synth scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"synth `seed` = {seed!r}: must be an integer >= 0")
    if not isinstance(options, SynthOptions):
        raise ConfigError(f"synth `options` must be SynthOptions, not {type(options).__name__}")
    o = options
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(9)]
    # (one stream per draw, each added last: a run without the newer options stays as it was)
    anatomy_rng, cement_rng, geometry_rng, motion_rng, noise_rng, texture_rng = streams[:6]
    exposure_rng, collimation_rng, withdrawal_rng = streams[6:]

    # The patient, the trocar and the cement, in anatomy coordinates.
    spine = make_spine(anatomy_rng)
    needle = place_needle(spine, anatomy_rng)
    grid = cement_grid(spine)
    fill = grow(plan_scenario(scenario, spine, needle, grid, cement_rng), grid, needle, cement_rng)

    # The imaging geometry, the clock and the patient's motion.
    n, size, view = o.frames, o.size_px, o.view
    geometry = detector_geometry(size, geometry_rng)
    mm_per_px = geometry["mm_per_px"]
    body = spine.body
    focus = (body.uc + 8.0, body.vc) if view == "lateral" else (0.0, body.vc)
    focus = (focus[0] + geometry_rng.uniform(-4.0, 4.0), focus[1] + geometry_rng.uniform(-4.0, 4.0))
    transform = ViewTransform(mm_per_px, size, size, np.deg2rad(o.tilt_deg), focus)
    fov = make_field(o.field, size, size, geometry_rng)
    time_s = frame_times(n, o.fps, o.jitter, motion_rng)
    pre = o.pre_injection_frames
    offsets, shift_frame = motion_mm(
        time_s,
        breathing=o.breathing,
        sudden_shift=o.sudden_shift,
        shift_frames=(pre + 2, n - 2),
        tilt_rad=transform.tilt_rad,
        rng=motion_rng,
    )
    output, step_frame = tube_output(n, changes=o.exposure_changes, step_frames=(pre + 2, n - 2), rng=exposure_rng)

    # The injection's clock: a constant volume rate, the front's speed kept in range.
    start_s = float(time_s[pre - 1])
    duration_s = fill.duration_s(needle.tip, float(time_s[-1]) - start_s, _FILL_SHARE, _FRONT_SPEED_MM_S)
    first_frame = np.searchsorted(time_s, start_s + duration_s * fill.fill_fractions(), side="left")
    voxels = fill.voxels
    outside = fill.outside
    volume_ml = np.cumsum(np.bincount(first_frame, minlength=n + 1)[:n]) * grid.spacing_mm**3 / 1000.0

    bone_spacing = max(mm_per_px / 2, _MIN_BONE_SPACING_MM)
    cement = Projection.of_grid(project_fill(grid, voxels, first_frame, n, view), grid, view)
    corners = body.corners_lateral() if view == "lateral" else body.corners_ap()
    corners_mm = np.array([corners[k] for k in CORNER_NAMES])
    narrowed = None
    if o.collimation_change:
        keep = _in_view(np.concatenate([corners_mm, _cement_extent_mm(cement)]), transform, offsets)
        narrowed = (_injection_frame(pre, n, collimation_rng), narrowed_field(fov, keep, size, size, collimation_rng))
    withdrawn = None
    if o.needle_withdrawal:
        withdrawn_from = _injection_frame(pre, n, withdrawal_rng)
        withdrawn = (withdrawn_from, needle.withdrawn(withdrawal_rng.uniform(*_WITHDRAWAL_MM)))
    rendered = render(
        spine,
        needle,
        Projection(*bone_projection(spine, view, bone_spacing, texture_rng), bone_spacing),
        cement,
        Projection.of_grid(project_fill(grid, voxels[outside], first_frame[outside], n, view), grid, view),
        transform=transform,
        offsets_mm=offsets,
        tube_output=output,
        field=fov,
        options=o,
        noise_rng=noise_rng,
        narrowed=narrowed,
        withdrawn=withdrawn,
    )
    run = FluoroRun(
        frames=rendered.frames,
        time_s=time_s,
        fps=float(o.fps),
        bits_stored=o.bits_stored,
        photometric=o.photometric,
        imager_pixel_spacing_mm=geometry["imager_pixel_spacing_mm"],
        source_to_detector_mm=geometry["source_to_detector_mm"],
        source_to_patient_mm=geometry["source_to_patient_mm"],
        view=view,
        positioner_primary_deg=90.0 if view == "lateral" else 0.0,
        positioner_secondary_deg=0.0,
        field=fov,
    )

    masks = rendered.thickness_mm > VISIBILITY_FLOOR_MM
    corners_px = [_corner_dict(transform.to_pixels(corners_mm, offsets[f])) for f in range(n)]
    leaking = leak_seen(rendered.leak_masks, corners_px)
    leak_classes = [[fill.leak_class] if seen else [] for seen in leaking]
    records, events = frame_records(masks, corners_px, time_s, mm_per_px, leak_classes, volume_ml, view)
    leak_frames = np.flatnonzero(leaking)
    leak_cement_frames = np.flatnonzero(rendered.leak_masks.any(axis=(1, 2)))
    tip_view, entry_view = _needle_points(needle, body, view)
    truth = {
        "scenario": scenario,
        "seed": int(seed),
        "fps": float(o.fps),
        "mm_per_px": mm_per_px,
        "view": view,
        "vertebral_body": corners_px[0],
        "frames": records,
        "events": events,
        "visibility_floor_mm": VISIBILITY_FLOOR_MM,
        "masks_file": None,
        "options": asdict(o),
        "needle": {
            "tip_px": _point(transform.to_pixels(tip_view, offsets[0])),
            "entry_px": _point(transform.to_pixels(entry_view, offsets[0])),
            "diameter_mm": 2 * needle.radius_mm,
            "withdrawal": {
                "frame": withdrawn[0],
                "mm": float(np.linalg.norm(withdrawn[1].tip - needle.tip)),
                "tip_px": _point(transform.to_pixels(_needle_points(withdrawn[1], body, view)[0], offsets[0])),
            }
            if withdrawn
            else None,
        },
        "injection": {
            "start_s": start_s,
            "end_s": start_s + duration_s,
            "volume_ml": fill.volume_ml,
            "end_state_reached": bool(fill.reached and start_s + duration_s <= time_s[-1] + 1e-9),
            "leak_class": fill.leak_class,
            "first_leak_frame": int(leak_frames[0]) if leak_frames.size else None,
            "first_leak_cement_frame": int(leak_cement_frames[0]) if leak_cement_frames.size else None,
        },
        "motion": {"offsets_mm": offsets.round(4).tolist(), "sudden_shift_frame": shift_frame},
        "exposure": {"tube_output": output.round(6).tolist(), "step_frame": step_frame},
        "collimation": {
            "frame": narrowed[0] if narrowed else None,
            "field": {side: getattr(narrowed[1], side) for side in ("top", "bottom", "left", "right")}
            if narrowed
            else None,
        },
        "display": rendered.display.as_dict(),
        "mu_cement_excess_per_mm": MU_CEMENT_EXCESS_PER_MM,
        "geometry": dict(geometry, tilt_deg=float(o.tilt_deg)),
    }
    logger.debug("synth %s seed %d: %.2f mL over %.1f s", scenario, seed, fill.volume_ml, duration_s)
    return SynthResult(run, truth, masks, rendered.thickness_mm, rendered.needle_masks)


def _injection_frame(pre: int, n: int, rng: np.random.Generator) -> int:
    """A random frame of the injection phase, as ``sudden_shift`` chooses it: from the third
    frame after the ``pre`` pre-injection frames to the second-last of ``n`` (the last when
    the run is shorter)."""
    return int(rng.integers(pre + 2, n - 1)) if n - 2 >= pre + 2 else n - 1


def _cement_extent_mm(cement: Projection) -> np.ndarray:
    """The corners ``[4, 2]`` (view mm) of the box around all of a run's cement (its last frame)."""
    cells = np.argwhere(cement.image[-1] > VISIBILITY_FLOOR_MM)
    if cells.size == 0:
        return np.empty((0, 2))
    (x0, y0), (x1, y1) = np.asarray(cement.origin_mm) + cement.spacing_mm * np.array([cells.min(0), cells.max(0)])
    return np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])


def _in_view(points_mm: np.ndarray, transform: ViewTransform, offsets_mm: np.ndarray) -> tuple[float, ...]:
    """``top, bottom, left, right`` (px) of a box holding ``points_mm`` in every frame, with
    :data:`COLLIMATION_KEEP_MM` around them."""
    pixels = transform.to_pixels(points_mm, offsets_mm[0])
    reach = (COLLIMATION_KEEP_MM + np.abs(offsets_mm - offsets_mm[0]).max()) / transform.mm_per_px
    (left, top), (right, bottom) = pixels.min(axis=0) - reach, pixels.max(axis=0) + reach
    return top, bottom, left, right


def _needle_points(needle, body, view: str):
    """The tip and the point where the axis crosses the posterior wall, view mm."""
    d = needle.direction
    t_wall = (body.u_posterior - needle.tip[0]) / d[0]
    entry = needle.point(t_wall)
    pick = (0, 1) if view == "lateral" else (2, 1)
    return needle.tip[list(pick)], entry[list(pick)]


def _point(p) -> list[float]:
    return [float(p[0]), float(p[1])]


def _corner_dict(points: np.ndarray) -> dict:
    return {name: _point(p) for name, p in zip(CORNER_NAMES, points)}
