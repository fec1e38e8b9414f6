"""A body-aligned sampling frame: image gradients resampled along a body's two axes.

The frame's origin is a point of the image (the needle tip), its first axis ``a`` runs
across the body toward the needle's hub and its second axis ``c`` along the spine, toward
larger image rows; coordinates ``(s, t)`` along them are mm at the isocentre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["BodyFrame", "dominant_orientation", "gradients"]

# The image is smoothed by this much before its gradient is taken, mm: less than a
# cortical shell's blurred width, more than the trabecular grain.
_SMOOTH_MM = 0.6


def gradients(image: np.ndarray, *, mm_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    """``(d/dx, d/dy)`` of the smoothed image, attenuation per mm, each [rows, cols]."""
    smooth = ndi.gaussian_filter(np.asarray(image, dtype=np.float32), _SMOOTH_MM / mm_per_px)
    gy, gx = np.gradient(smooth)
    return gx / mm_per_px, gy / mm_per_px


def dominant_orientation(gx: np.ndarray, gy: np.ndarray, weight: np.ndarray) -> float:
    """The orientation of a right-angled set of edges, radians in ``[-pi/4, pi/4)``.

    A vertebral body's walls and endplates are (nearly) at right angles: their gradient
    directions agree modulo 90 degrees, so the fourth power of the unit gradient, weighted
    by the squared gradient magnitude, averages to the body's orientation while isotropic
    texture and noise cancel.

    Parameters
    ----------
    gx, gy : ndarray, shape [rows, cols]
        Image gradient.
    weight : ndarray, shape [rows, cols]
        Where to look (0 outside).
    """
    angle = np.arctan2(gy, gx)
    z = np.sum(weight * (gx * gx + gy * gy) * np.exp(4j * angle))
    return float(np.angle(z) / 4.0)


@dataclass(frozen=True)
class BodyFrame:
    """Body-aligned coordinates ``(s, t)`` mm around ``origin_px``.

    Attributes
    ----------
    origin_px : ndarray, shape [2]
        ``(x, y)`` px of ``s = t = 0``.
    a, c : ndarray, shape [2]
        Unit image vectors of the ``s`` and ``t`` axes.
    mm_per_px : float
    """

    origin_px: np.ndarray
    a: np.ndarray
    c: np.ndarray
    mm_per_px: float

    @classmethod
    def around(cls, origin_px, angle: float, toward, mm_per_px: float) -> BodyFrame:
        """The frame whose ``a`` axis is the one of ``angle`` or ``angle + 90 deg`` nearer
        ``toward`` (a direction, pointing the same way), ``c`` toward larger rows."""
        candidates = [np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])]
        toward = np.asarray(toward, dtype=np.float64)
        a = max(candidates, key=lambda v: abs(v @ toward))
        a = a if a @ toward >= 0 else -a
        c = np.array([-a[1], a[0]])
        c = c if c[1] >= 0 else -c
        return cls(np.asarray(origin_px, dtype=np.float64), a, c, float(mm_per_px))

    def to_px(self, s, t) -> np.ndarray:
        """Image ``(x, y)`` px of frame points ``(s, t)`` mm; shape ``[..., 2]``."""
        s, t = np.asarray(s, dtype=np.float64), np.asarray(t, dtype=np.float64)
        return self.origin_px + (s[..., None] * self.a + t[..., None] * self.c) / self.mm_per_px

    def sample(self, image: np.ndarray, s, t) -> np.ndarray:
        """``image`` at frame points ``(s, t)`` mm (bilinear; 0 outside the image)."""
        p = self.to_px(s, t)
        return ndi.map_coordinates(image, [p[..., 1], p[..., 0]], order=1, mode="constant", cval=0.0)
