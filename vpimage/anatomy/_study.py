"""The anatomy of a study: its first frames, aligned and averaged, searched by ``find_anatomy``."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from vpimage.anatomy._confidence import MIN_CONFIDENCE
from vpimage.anatomy._find import find_anatomy
from vpimage.anatomy._needle import find_needle
from vpimage.anatomy._types import Anatomy, NeedleTrack
from vpimage.kernels import get_backend

__all__ = ["PRE_INJECTION_S", "pre_injection_image", "study_anatomy", "study_needle"]

#: The frames within this time of the first are taken as free of cement, s.
PRE_INJECTION_S = 0.5
_MAX_FRAMES = 10
_FIELD_MARGIN_PX = 8  # motion is measured this far inside the field's edge


def study_anatomy(study, *, display_log_range: float, min_confidence: float = MIN_CONFIDENCE,
                  window_s: float = PRE_INJECTION_S) -> Anatomy:
    """Find the needle and the treated body in a study's first frames (frame-0 coordinates).

    Parameters
    ----------
    study : vpimage.io.Study
        Frames oriented like MONOCHROME2; its geometry gives mm/px, the field and the view.
    display_log_range : float
        Attenuation across the stored range of a log-encoded display (the engine's
        ``segmentation.display_log_range``), so that the image is in the engine's units.
    min_confidence : float, optional
    window_s : float, optional
        Frames within this time of the first are averaged (at least one, at most 10).

    Returns
    -------
    Anatomy
        ``reason`` ``"no_calibration"`` and no corners when the study has no mm/px.
    """
    geometry = study.geometry
    view = "ap" if geometry.view == "ap" else "lateral"
    if geometry.mm_per_px is None:
        return Anatomy(None, 0.0, view, reason="no_calibration")
    image = _first_frames_image(study, display_log_range, window_s)
    return find_anatomy(image, mm_per_px=geometry.mm_per_px, fov_mask=geometry.fov_mask, view=view,
                        min_confidence=min_confidence)


def study_needle(study, *, display_log_range: float, window_s: float = PRE_INJECTION_S) -> NeedleTrack | None:
    """The longest needle shaft in a study's first frames (frame-0 coordinates).

    Parameters are those of :func:`study_anatomy`.

    Returns
    -------
    NeedleTrack or None
        None when the study has no mm/px or no shaft is seen.
    """
    geometry = study.geometry
    if geometry.mm_per_px is None:
        return None
    image = _first_frames_image(study, display_log_range, window_s)
    return find_needle(image, mm_per_px=geometry.mm_per_px, fov_mask=geometry.fov_mask)


def _first_frames_image(study, display_log_range: float, window_s: float) -> np.ndarray:
    """:func:`pre_injection_image` of the frames within ``window_s`` of the first (1 to 10)."""
    count = int(np.clip(np.searchsorted(study.timing.time_s, window_s, side="right"), 1, _MAX_FRAMES))
    frames = []
    for frame in study.iter_frames():
        frames.append(frame)
        if len(frames) == count:
            break
    return pre_injection_image(np.stack(frames), fov_mask=study.geometry.fov_mask,
                               display_log_range=display_log_range, white_level=study.white_level)


def pre_injection_image(frames: np.ndarray, *, fov_mask: np.ndarray, display_log_range: float,
                        white_level: float | None = None) -> np.ndarray:
    """The mean attenuation of ``frames``, each aligned on the first.

    Parameters
    ----------
    frames : ndarray, float32, shape [frames, rows, cols]
        Pixel values oriented like MONOCHROME2 (higher = brighter).
    fov_mask : ndarray of bool, shape [rows, cols]
    display_log_range : float
        See :func:`vpimage.kernels.attenuation` (``log_range``).
    white_level : float, optional
        Top of the stored pixel range (:attr:`vpimage.io.Study.white_level`); by default the
        first frame's brightest exposed value rounded up to ``2**k - 1``.

    Returns
    -------
    ndarray, float32, shape [rows, cols]
        Attenuation in frame-0 coordinates; outside the field the field's median.
    """
    k = get_backend("numpy")
    if white_level is None:
        white_level = k.stored_range_top(frames[0], fov_mask)
    attenuation = k.attenuation(frames, white_level=white_level, log_range=display_log_range)
    fill = float(np.median(attenuation[0][fov_mask])) if fov_mask.any() else 0.0
    attenuation = k.mask_field(attenuation, fov_mask, fill=fill)
    if len(frames) == 1:
        return attenuation[0]
    weight = ndi.binary_erosion(fov_mask, iterations=_FIELD_MARGIN_PX)
    if not weight.any():
        return attenuation[0]
    shifts, _ = k.estimate_shift(attenuation, attenuation[0], weight=weight)
    return k.shift_images(attenuation, -shifts, order=3).mean(axis=0)
