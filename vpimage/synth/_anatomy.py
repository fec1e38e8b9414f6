"""Lumbar spine of the phantom: vertebral bodies, discs, posterior elements, soft tissue.

Anatomy coordinates are millimetres at the isocentre, origin at the centre of the treated
(middle) vertebral body:

- ``u``: antero-posterior, increasing posteriorly;
- ``v``: cranio-caudal, increasing caudally;
- ``w``: left-right, increasing toward the patient's left.

The lateral view looks along ``w`` (image x = ``u``: anterior to the left; image y = ``v``:
cranial up); the AP view looks along ``u`` (image x = ``w``: the patient's right on the
image left; image y = ``v``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ANTERIOR_EXPONENT",
    "MU_PER_MM",
    "POSTERIOR_EXPONENT",
    "Body",
    "Ellipsoid",
    "Grid",
    "Spine",
    "make_spine",
    "soft_tissue_path_mm",
]

#: Linear attenuation coefficients at an effective energy of about 60 keV, per mm.
MU_PER_MM = {
    "soft": 0.020,
    "disc": 0.022,
    "trabecular": 0.040,
    "cortical": 0.060,
    "cement": 0.35,
    "steel": 1.2,
}

ANTERIOR_EXPONENT = 2.5  # superellipse exponent: the rounded front of a body's axial section
POSTERIOR_EXPONENT = 6.0  # ... and its nearly flat back (the posterior wall)


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid in anatomy coordinates.

    Attributes
    ----------
    origin_mm : tuple of float
        ``(u, v, w)`` of the centre of voxel ``[0, 0, 0]``, mm.
    spacing_mm : float
        Voxel edge, mm.
    shape : tuple of int
        ``(nu, nv, nw)``.
    """

    origin_mm: tuple[float, float, float]
    spacing_mm: float
    shape: tuple[int, int, int]

    @classmethod
    def covering(cls, lo_mm, hi_mm, spacing_mm: float) -> Grid:
        """The grid of spacing ``spacing_mm`` whose voxel centres cover ``[lo, hi]`` per axis."""
        shape = tuple(int(np.ceil((h - lo) / spacing_mm)) + 1 for lo, h in zip(lo_mm, hi_mm))
        return cls(tuple(float(x) for x in lo_mm), float(spacing_mm), shape)

    def axis(self, i: int) -> np.ndarray:
        """Voxel-centre coordinates along axis ``i`` (0: u, 1: v, 2: w), mm."""
        return self.origin_mm[i] + self.spacing_mm * np.arange(self.shape[i])

    def index_range(self, i: int, lo: float, hi: float) -> slice:
        """The slice of voxel indices along axis ``i`` whose centres may lie in ``[lo, hi]``."""
        a = int(np.floor((lo - self.origin_mm[i]) / self.spacing_mm))
        b = int(np.ceil((hi - self.origin_mm[i]) / self.spacing_mm)) + 1
        return slice(max(a, 0), min(max(b, 0), self.shape[i]))

    def centres(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable ``u, v, w`` voxel-centre coordinates of the sub-box ``box``, mm."""
        u = self.axis(0)[box[0]][:, None, None]
        v = self.axis(1)[box[1]][None, :, None]
        w = self.axis(2)[box[2]][None, None, :]
        return u, v, w


def _cross_section(u, w, uc: float, half_depth: float, half_width: float):
    """True inside the axial cross-section of a body (rounded front, flat back)."""
    x = (u - uc) / half_depth
    p = np.where(x < 0, ANTERIOR_EXPONENT, POSTERIOR_EXPONENT)
    return np.abs(x) ** p + np.abs(w / half_width) ** p <= 1.0


@dataclass(frozen=True)
class Body:
    """A vertebral body: a cylinder along ``v`` with a wedge-shaped lateral outline.

    Its axial cross-section is rounded in front and flat at the back (the posterior wall).
    Its endplates are planes, sloping along ``u`` (the wedge) and, when the body is rolled
    about the ``u`` axis, along ``w``; the lateral projection then shows each endplate as a
    band ``2 * half_width * tan(roll)`` high, whose mid-line (at ``w = 0``) joins the
    morphometric corners.

    Attributes
    ----------
    uc, vc : float
        Centre, mm.
    depth : float
        Antero-posterior depth, mm.
    height_posterior, height_anterior : float
        Heights of the posterior and anterior walls, mm.
    half_width : float
        Half of the left-right width, mm.
    shell : float
        Thickness of the cortical shell and endplates, mm.
    roll : float
        Rotation about the ``u`` axis, radians: the endplates rise by ``tan(roll)`` mm per
        mm toward the patient's left.
    """

    uc: float
    vc: float
    depth: float
    height_posterior: float
    height_anterior: float
    half_width: float
    shell: float
    roll: float = 0.0

    @property
    def u_anterior(self) -> float:
        return self.uc - self.depth / 2

    @property
    def u_posterior(self) -> float:
        return self.uc + self.depth / 2

    @property
    def height_slope(self) -> float:
        """Change of the height per mm toward posterior (the wedge)."""
        return (self.height_posterior - self.height_anterior) / self.depth

    def height(self, u):
        """Height between the outer endplates at ``u`` (linear in ``u``), mm."""
        return self.height_anterior + (np.asarray(u, dtype=float) - self.u_anterior) * self.height_slope

    def v_mid(self, w=0.0):
        """The mid-plane between the endplates at ``w``, mm (``vc`` at ``w = 0``)."""
        return self.vc - np.asarray(w, dtype=float) * np.tan(self.roll)

    def v_top(self, u, w=0.0):
        """The superior endplate's outer surface at ``(u, w)``, mm."""
        return self.v_mid(w) - self.height(u) / 2

    def v_bottom(self, u, w=0.0):
        """The inferior endplate's outer surface at ``(u, w)``, mm."""
        return self.v_mid(w) + self.height(u) / 2

    def inside(self, u, v, w, shrink: float = 0.0):
        """True inside the body shrunk by ``shrink`` mm (``shell``: the trabecular core)."""
        section = _cross_section(u, w, self.uc, self.depth / 2 - shrink, self.half_width - shrink)
        return section & (np.abs(v - self.v_mid(w)) <= self.height(u) / 2 - shrink)

    def corners_lateral(self) -> dict[str, tuple[float, float]]:
        """Morphometric corners of the lateral projection (mid-plane ``w = 0``), ``(u, v)`` mm."""
        ua, up = self.u_anterior, self.u_posterior
        return {
            "anterior_superior": (ua, float(self.v_top(ua))),
            "posterior_superior": (up, float(self.v_top(up))),
            "posterior_inferior": (up, float(self.v_bottom(up))),
            "anterior_inferior": (ua, float(self.v_bottom(ua))),
        }

    def corners_ap(self) -> dict[str, tuple[float, float]]:
        """Corners of the AP projection's outline, ``(w, v)`` mm.

        In the AP view the names keep their order around the outline: ``anterior_*`` are on
        the image left (the patient's right, ``w < 0``), ``posterior_*`` on the image right.
        """
        b = self.half_width
        ends = (self.u_anterior, self.u_posterior)
        return {
            "anterior_superior": (-b, float(min(self.v_top(u, -b) for u in ends))),
            "posterior_superior": (b, float(min(self.v_top(u, b) for u in ends))),
            "posterior_inferior": (b, float(max(self.v_bottom(u, b) for u in ends))),
            "anterior_inferior": (-b, float(max(self.v_bottom(u, -b) for u in ends))),
        }

    def bounds(self, margin: float = 0.0):
        """``(lo, hi)`` corners ``(u, v, w)`` of a box holding the body plus ``margin`` mm."""
        ends, b = (self.u_anterior, self.u_posterior), self.half_width
        top = min(self.v_top(u, w) for u in ends for w in (-b, b))
        bottom = max(self.v_bottom(u, w) for u in ends for w in (-b, b))
        lo = (self.u_anterior - margin, float(top) - margin, -b - margin)
        hi = (self.u_posterior + margin, float(bottom) + margin, b + margin)
        return lo, hi


@dataclass(frozen=True)
class Ellipsoid:
    """An axis-aligned bony ellipsoid (pedicle, lamina, process): cortical shell, trabecular core.

    Attributes
    ----------
    centre, semi_axes : tuple of float
        ``(u, v, w)``, mm.
    u_min : float or None
        Where the part joins a vertebral body (a pedicle at its posterior wall): bone
        anterior to ``u_min`` belongs to the body, not to this part.
    """

    centre: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    u_min: float | None = None


@dataclass(frozen=True)
class Spine:
    """The anatomy of one phantom patient.

    Attributes
    ----------
    bodies : tuple of Body
        Vertebral bodies, cranial first; ``bodies[treated]`` is injected.
    treated : int
        Index of the treated body (the middle one).
    posterior_elements : tuple of Ellipsoid
        Pedicles, laminae, facets, spinous and transverse processes.
    patient_centre_u, patient_half_ap, patient_half_lateral : float
        The trunk as an elliptic cylinder along ``v``, mm.
    pedicle_centres : tuple of (u, v, w)
        Centres of the treated body's two pedicles, mm (the needle passes one).
    """

    bodies: tuple[Body, ...]
    treated: int
    posterior_elements: tuple[Ellipsoid, ...]
    patient_centre_u: float
    patient_half_ap: float
    patient_half_lateral: float
    pedicle_centres: tuple[tuple[float, float, float], ...]

    @property
    def body(self) -> Body:
        """The treated vertebral body."""
        return self.bodies[self.treated]


def make_spine(rng: np.random.Generator, n_bodies: int = 5) -> Spine:
    """Draw a lumbar spine: ``n_bodies`` vertebrae, the middle one treated.

    Bodies are 32-45 mm deep and 24-30 mm high, discs 8-11 mm; the trunk is 300-360 mm
    wide and 220-260 mm deep.
    """
    treated = n_bodies // 2
    depth0 = rng.uniform(32.0, 45.0)
    bodies: list[Body] = []
    elements: list[Ellipsoid] = []
    pedicles = ()
    heights = [rng.uniform(25.0, 29.0) for _ in range(n_bodies)]  # +- half the wedge: 24-30 mm
    discs = [rng.uniform(8.0, 11.0) for _ in range(n_bodies - 1)]
    # Stack the bodies along v so that the treated one is centred on v = 0.
    centres = np.cumsum([0.0] + [heights[i] / 2 + discs[i] + heights[i + 1] / 2 for i in range(n_bodies - 1)])
    centres -= centres[treated]
    for i in range(n_bodies):
        depth = depth0 if i == treated else float(np.clip(depth0 + rng.normal(0.0, 1.5), 32.0, 45.0))
        uc = 0.0 if i == treated else rng.uniform(-1.5, 1.5)
        height = heights[i]
        wedge = rng.uniform(-2.0, 2.0)
        body = Body(
            uc=uc,
            vc=float(centres[i]),
            depth=depth,
            height_posterior=height - wedge / 2,
            height_anterior=height + wedge / 2,
            half_width=depth * rng.uniform(0.62, 0.7),
            shell=rng.uniform(0.8, 1.0),
            roll=np.deg2rad(rng.uniform(-2.5, 2.5)),
        )
        bodies.append(body)
        side, parts = _posterior_elements(body, rng)
        elements.extend(parts)
        if i == treated:
            pedicles = side
    half_ap = rng.uniform(110.0, 130.0)
    # Put the skin of the back 45-65 mm behind the tips of the spinous processes.
    back = bodies[treated].u_posterior + 50.0 + rng.uniform(45.0, 65.0)
    return Spine(
        bodies=tuple(bodies),
        treated=treated,
        posterior_elements=tuple(elements),
        patient_centre_u=back - half_ap,
        patient_half_ap=half_ap,
        patient_half_lateral=rng.uniform(150.0, 180.0),
        pedicle_centres=pedicles,
    )


def _posterior_elements(body: Body, rng: np.random.Generator):
    """Rough pedicles, laminae, facets and processes behind ``body``."""
    up, vc, b = body.u_posterior, body.vc, body.half_width
    hp = body.height_posterior
    pedicle_v = vc - 0.18 * hp
    pedicle_w = b - rng.uniform(5.0, 7.0)
    pedicles = tuple((up + 7.0, pedicle_v, s * pedicle_w) for s in (-1.0, 1.0))
    parts = [Ellipsoid(c, (10.0, 0.3 * hp, rng.uniform(4.0, 5.0)), u_min=up) for c in pedicles]
    parts.append(Ellipsoid((up + 21.0, vc + 1.0, 0.0), (5.0, 0.45 * hp, pedicle_w)))  # laminae
    for s in (-1.0, 1.0):
        parts.append(Ellipsoid((up + 18.0, vc - 0.45 * hp, s * pedicle_w), (6.0, 7.0, 5.0)))  # facets
        parts.append(Ellipsoid((up + 12.0, vc - 0.1 * hp, s * (b + 9.0)), (4.0, 5.0, 12.0)))  # transverse
    parts.append(Ellipsoid((up + 38.0, vc + 3.0, 0.0), (14.0, 0.33 * hp, 3.5)))  # spinous process
    return pedicles, parts


def soft_tissue_path_mm(spine: Spine, x_mm: np.ndarray, view: str) -> np.ndarray:
    """Chord through the trunk (elliptic cylinder along ``v``) of the ray at ``x_mm``.

    ``x_mm`` is the projection coordinate (``u`` in the lateral view, ``w`` in AP), any
    shape; returns the path length in mm, same shape.
    """
    if view == "lateral":
        s = (x_mm - spine.patient_centre_u) / spine.patient_half_ap
        half = spine.patient_half_lateral
    else:
        s = x_mm / spine.patient_half_lateral
        half = spine.patient_half_ap
    return 2.0 * half * np.sqrt(np.clip(1.0 - s * s, 0.0, None))
