"""AP view: the pedicles, the two dense ovals in the upper lateral parts of a body's outline."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from vpimage.measures import Corners, body_mask

__all__ = ["find_pedicles"]

_BLOB_MM = 3.0  # a pedicle's oval is about 6-10 mm across: the blob filter's sigma
_BACKGROUND_MM = 8.0  # ... against the body's own smooth shading
_MIN_CONTRAST = 3.0  # blob response over its noise sigma inside the body


def find_pedicles(image: np.ndarray, corners: Corners, *, mm_per_px: float,
                  usable: np.ndarray | None = None) -> tuple[tuple[float, float], ...]:
    """Centres ``(x, y)`` px of the pedicles seen in the AP outline ``corners``.

    One per outer third of the outline (image left, image right), level with its upper
    half: the strongest local excess of attenuation at a pedicle's scale (a difference of
    Gaussians), kept when it stands out of the body's texture.

    Parameters
    ----------
    image : ndarray, float32, shape [rows, cols]
        Pre-injection attenuation.
    corners : Corners
        The body's AP outline (``anterior_*`` on the image left).
    mm_per_px : float
    usable : ndarray of bool, shape [rows, cols], optional
        Where a pedicle may be looked for (not on a needle's steel); everywhere when None.

    Returns
    -------
    tuple of (x, y)
        Left one first; empty when none stands out.
    """
    blob = ndi.gaussian_filter(image, _BLOB_MM / mm_per_px) - ndi.gaussian_filter(image, _BACKGROUND_MM / mm_per_px)
    inside = body_mask(corners, image.shape)
    if inside.sum() < 50:
        return ()
    values = blob[inside]
    sigma = max(float(1.4826 * np.median(np.abs(values - np.median(values)))), 1e-6)
    p = corners.as_array()
    top_mid, bottom_mid = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2
    rows, cols = np.indices(image.shape, dtype=np.float64)
    # Position along the body's height (0 top, 1 bottom) and across it (0 left, 1 right).
    axis = bottom_mid - top_mid
    down = ((cols - top_mid[0]) * axis[0] + (rows - top_mid[1]) * axis[1]) / (axis @ axis)
    left_mid, right_mid = (p[0] + p[3]) / 2, (p[1] + p[2]) / 2
    across_axis = right_mid - left_mid
    across = ((cols - left_mid[0]) * across_axis[0] + (rows - left_mid[1]) * across_axis[1]) / (across_axis @ across_axis)
    found = []
    # The pedicles sit in the outer thirds, level with the upper half; the spinous process
    # lies between them.
    for side in ((across > 0.03) & (across < 0.33), (across > 0.67) & (across < 0.97)):
        region = inside & side & (down > 0.1) & (down < 0.6) & (True if usable is None else usable)
        if not region.any():
            continue
        score = np.where(region, blob, -np.inf)
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        if (blob[y, x] - np.median(values)) / sigma >= _MIN_CONTRAST:
            found.append((float(x), float(y)))
    return tuple(found)
