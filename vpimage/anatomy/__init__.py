"""Automatic anatomy: the needle and the treated vertebral body in a pre-injection image.

    anatomy = find_anatomy(image, mm_per_px=0.3, fov_mask=fov, view="lateral")
    anatomy.corners      # Corners (px) or None when not found with confidence
    anatomy.confidence   # 0-1; below MIN_CONFIDENCE the corners are None
    anatomy.needle       # NeedleTrack: tip (px), direction toward the hub, length, width
    needle_entry_side(corners, needle)  # "posterior", ...: checks corners drawn by hand
"""

from vpimage.anatomy._compare import corner_errors_px, wall_angle_error_deg
from vpimage.anatomy._confidence import MIN_CONFIDENCE
from vpimage.anatomy._entry import needle_entry_side
from vpimage.anatomy._find import find_anatomy
from vpimage.anatomy._needle import find_needle, find_needles
from vpimage.anatomy._study import PRE_INJECTION_S, pre_injection_image, study_anatomy, study_needle
from vpimage.anatomy._types import Anatomy, NeedleTrack

__all__ = [
    "MIN_CONFIDENCE",
    "PRE_INJECTION_S",
    "Anatomy",
    "NeedleTrack",
    "corner_errors_px",
    "find_anatomy",
    "find_needle",
    "find_needles",
    "needle_entry_side",
    "pre_injection_image",
    "study_anatomy",
    "study_needle",
    "wall_angle_error_deg",
]
