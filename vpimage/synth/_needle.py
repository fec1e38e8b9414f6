"""The steel trocar: a transpedicular straight cylinder, with its exact path lengths."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vpimage.synth._anatomy import Spine

__all__ = ["Needle", "place_needle"]

_BEAM = {"lateral": np.array([0.0, 0.0, 1.0]), "ap": np.array([1.0, 0.0, 0.0])}


@dataclass(frozen=True)
class Needle:
    """A straight steel cylinder from ``tip`` backwards along ``direction``.

    Attributes
    ----------
    tip : ndarray, shape [3]
        Tip ``(u, v, w)``, mm.
    direction : ndarray, shape [3]
        Unit vector from the tip toward the hub.
    length_mm : float
        Shaft length from the tip, mm (the hub lies outside the patient).
    radius_mm : float
        Outer radius, mm (11-13 gauge: 1.2-1.5 mm).
    """

    tip: np.ndarray
    direction: np.ndarray
    length_mm: float
    radius_mm: float

    def point(self, t_mm: float) -> np.ndarray:
        """The axis point ``t_mm`` behind the tip, ``(u, v, w)`` mm."""
        return self.tip + t_mm * self.direction

    def withdrawn(self, by_mm: float) -> Needle:
        """The same needle pulled ``by_mm`` back along its shaft (its hub stays outside the patient)."""
        return replace(self, tip=self.point(by_mm), length_mm=self.length_mm - by_mm)

    def distance_to_axis(self, u, v, w):
        """Distance of points to the shaft's axis segment, mm (broadcast shapes)."""
        d = self.direction
        pu, pv, pw = u - self.tip[0], v - self.tip[1], w - self.tip[2]
        t = np.clip(pu * d[0] + pv * d[1] + pw * d[2], 0.0, self.length_mm)
        return np.sqrt((pu - t * d[0]) ** 2 + (pv - t * d[1]) ** 2 + (pw - t * d[2]) ** 2)

    def path_mm(self, x_mm: np.ndarray, y_mm: np.ndarray, view: str) -> np.ndarray:
        """Length of steel crossed by the ray through projection point ``(x, y)``, mm.

        Exact for a finite cylinder with flat ends: the chord through the infinite
        cylinder, clipped to the shaft's axial extent.

        Parameters
        ----------
        x_mm, y_mm : ndarray
            Projection coordinates (lateral: ``u, v``; AP: ``w, v``), same shape.
        view : {"lateral", "ap"}
        """
        e = _BEAM[view]
        origin = np.zeros(x_mm.shape + (3,))
        if view == "lateral":
            origin[..., 0], origin[..., 1] = x_mm, y_mm
        else:
            origin[..., 2], origin[..., 1] = x_mm, y_mm
        a = self.direction
        w0 = origin - self.tip
        b = float(e @ a)
        denom = max(1.0 - b * b, 1e-9)
        d_ = w0 @ e
        e_ = w0 @ a
        s_star = (b * e_ - d_) / denom
        t_star = (e_ - b * d_) / denom
        closest = w0 + s_star[..., None] * e - t_star[..., None] * a
        dist2 = np.einsum("...i,...i->...", closest, closest)
        half = np.sqrt(np.clip(self.radius_mm**2 - dist2, 0.0, None) / denom)
        lo, hi = s_star - half, s_star + half
        if abs(b) > 1e-9:
            # Axial coordinate along the ray: t(s) = e_ + s * b; keep 0 <= t <= length.
            s0, s1 = (0.0 - e_) / b, (self.length_mm - e_) / b
            lo, hi = np.maximum(lo, np.minimum(s0, s1)), np.minimum(hi, np.maximum(s0, s1))
        else:
            inside = (e_ >= 0) & (e_ <= self.length_mm)
            hi = np.where(inside, hi, lo)
        return np.clip(hi - lo, 0.0, None)


def place_needle(spine: Spine, rng: np.random.Generator) -> Needle:
    """A unipedicular trocar through one pedicle, tip in the body's anterior third.

    The tip lies in the anterior third, at most 30 mm in front of the posterior wall
    (so that the cement can reach the wall in a short clip), within 3 mm of the body's
    mid-height and mid-plane; the shaft passes the pedicle's centre and is
    130 mm long, so that its hub is outside the patient.
    """
    body = spine.body
    third = body.depth / 3
    lo = min(max(0.75 * third, body.depth - 30.0), third)
    tip = np.array(
        [
            body.u_anterior + rng.uniform(lo, third),
            body.vc + rng.uniform(-3.0, 3.0),
            rng.uniform(-3.0, 3.0),
        ]
    )
    pedicle = np.asarray(spine.pedicle_centres[int(rng.integers(2))])
    direction = pedicle - tip
    direction /= np.linalg.norm(direction)
    return Needle(tip=tip, direction=direction, length_mm=130.0, radius_mm=rng.uniform(1.2, 1.5))
