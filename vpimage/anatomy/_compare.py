"""How far two sets of corners are apart: per-corner distance and posterior-wall angle."""

from __future__ import annotations

import numpy as np

from vpimage.measures import Corners

__all__ = ["corner_errors_px", "wall_angle_error_deg"]


def corner_errors_px(found: Corners, reference: Corners) -> np.ndarray:
    """Distance of each corner of ``found`` from the same corner of ``reference``.

    Returns
    -------
    ndarray, float64, shape [4]
        px, in the order anterior_superior, posterior_superior, posterior_inferior,
        anterior_inferior.
    """
    return np.linalg.norm(found.as_array() - reference.as_array(), axis=1)


def wall_angle_error_deg(found: Corners, reference: Corners) -> float:
    """Angle between the two posterior walls (``posterior_superior``-``posterior_inferior``), degrees, 0-90."""
    a = np.subtract(found.posterior_inferior, found.posterior_superior)
    b = np.subtract(reference.posterior_inferior, reference.posterior_superior)
    cos = abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))))
