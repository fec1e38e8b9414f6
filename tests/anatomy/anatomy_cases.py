"""Phantom cases for the anatomy tests: pre-injection images as ``vpimage analyze`` builds them."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from vpimage.anatomy import PRE_INJECTION_S, pre_injection_image
from vpimage.config import RunConfig
from vpimage.measures import Corners
from vpimage.synth._phantom import SynthOptions, simulate

# The nuisance variants of the analysis issue (tests/test_accuracy.py), breathing in all.
VARIANTS = (
    {},
    {"dose": "low", "tilt_deg": 25.0},
    {"photometric": "MONOCHROME1", "field": "rectangle", "sudden_shift": True, "tilt_deg": 10.0},
    {"dose": "low", "sudden_shift": True, "photometric": "MONOCHROME1"},
    {"dose": "high", "tilt_deg": 20.0, "jitter": True},
)


def simulate_pre_injection(seed: int, variant: dict, view: str = "lateral"):
    """A short phantom run (its first frames are free of cement), its image and field.

    Returns ``(sim, image, fov_mask)``: the image is the aligned mean attenuation of the
    frames within PRE_INJECTION_S of the first, in the engine's units.
    """
    sim = simulate("no_leak", seed=seed, options=SynthOptions(frames=9, pre_injection_frames=5, view=view, **variant))
    run = sim.run
    frames = run.frames.astype(np.float32)
    if run.photometric == "MONOCHROME1":  # as vpimage.io gives them: MONOCHROME2-oriented
        frames = (2**run.bits_stored - 1) - frames
    count = int(np.searchsorted(run.time_s, PRE_INJECTION_S, side="right"))
    fov = run.field.mask(*frames.shape[1:])
    log_range = RunConfig.defaults().segmentation.display_log_range
    return sim, pre_injection_image(frames[:count], fov_mask=fov, display_log_range=log_range), fov


def truth_corners(sim) -> Corners:
    return Corners.from_dict(sim.truth["vertebral_body"])


def paint_needle(image: np.ndarray, tip, direction, width_px: float, excess: float = 4.0) -> np.ndarray:
    """``image`` with a straight steel shaft from ``tip`` along ``direction`` to the border."""
    d = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    rows, cols = np.indices(image.shape)
    px, py = cols - tip[0], rows - tip[1]
    across = np.abs(-px * d[1] + py * d[0])
    shaft = np.clip(width_px / 2 + 0.5 - across, 0, 1) * (px * d[0] + py * d[1] >= 0)
    return image + excess * ndi.gaussian_filter(shaft.astype(np.float32), 0.8)
