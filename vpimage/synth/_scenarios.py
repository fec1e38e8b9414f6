"""The injection scenarios: where the cement may go, what ends the injection, and the growth.

Each scenario is a :class:`Plan` on the cement grid (0.5 mm voxels over the treated body
and its surroundings). The body's cement grows first, by invasion percolation from the
needle tip inside the trabecular core; in the leak scenarios a crack (the *gate*) crosses
the cortex into a leak compartment outside the body, and once the body's cement touches
the gate a second invasion fills the compartment, in parallel with the body's growth.

=====================  =========================================================================
scenario               end state
=====================  =========================================================================
no_leak                2.0-3.5 mL in the body, all >= 9.5 mm in front of the posterior wall
posterior_approach     the front reaches the layer 1.4-1.9 mm in front of the posterior wall
posterior_breach       through a posterior-wall crack into the canal, >= 3 mm behind the wall
venous_leak            a 2 mm wide curved vein, 14-20 mm long, from the anterior cortex
disc_leak              0.15-0.35 mL through an endplate crack into the disc above or below
anterior_leak          0.15-0.35 mL through the anterior cortex into the paravertebral space
=====================  =========================================================================

Leak scenarios other than ``posterior_breach`` keep the body's cement >= 5.5 mm in front
of the posterior wall; every leak starts after at least 25-45 % (drawn) of the body's filling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpimage.synth._anatomy import Grid, Spine
from vpimage.synth._cement import ColumnTarget, CountTarget, invade, permeability_field
from vpimage.synth._needle import Needle

__all__ = ["SCENARIOS", "Fill", "Plan", "grow", "plan_scenario"]

SCENARIOS = ("no_leak", "posterior_approach", "posterior_breach", "venous_leak", "disc_leak", "anterior_leak")

VOXEL_MM = 0.5
_VOXELS_PER_ML = 1000.0 / VOXEL_MM**3
_MAX_VOXELS = 200_000  # 25 mL: a cap that no plan reaches when the anatomy is sane
_LEAK_WALL_CLEARANCE_MM = 5.5
_LEAK_START = (0.25, 0.45)  # least fraction of the body's filling before a leak starts
_POSTERIOR = np.array([1.0, 0.0, 0.0])


@dataclass
class Plan:
    """Where the cement of one scenario may go and what ends its injection.

    Boolean arrays are ``[nu, nv, nw]`` on the cement grid.

    Attributes
    ----------
    leak_class : str or None
        CONTRACT leak class of the compartment.
    body_allowed : ndarray of bool
        The trabecular core open to the body's cement (clipped by the scenario).
    body_stop : object or None
        Stop criterion of the body's invasion (None: grow to ``body_volume``).
    body_volume : int
        Voxel cap of the body's invasion.
    body_drift : ndarray, shape [3], or None
        Unit direction toward which the body's cement drifts.
    compactness, drift : float
        Weights of the pull toward the tip and of the drift, per 10 mm.
    gate, leak_compartment : ndarray of bool or None
        The cortical crack and the compartment beyond it.
    leak_stop : object or None
        Stop criterion of the leak's invasion.
    leak_drift : ndarray, shape [3], or None
        Unit direction toward which the leak's cement drifts.
    min_after_touch : float
        Once the body's cement touches the gate, the body goes on until it holds this many
        times the voxels it held then (the leak fills meanwhile).
    """

    leak_class: str | None
    body_allowed: np.ndarray
    body_stop: object
    body_volume: int
    body_drift: np.ndarray | None = None
    compactness: float = 0.3
    drift: float = 0.0
    gate: np.ndarray | None = None
    leak_compartment: np.ndarray | None = None
    leak_stop: object | None = None
    leak_drift: np.ndarray | None = None
    min_after_touch: float = 2.0


def cement_grid(spine: Spine) -> Grid:
    """The 0.5 mm cement grid over the treated body, its disc spaces and surroundings."""
    lo, hi = spine.body.bounds()
    return Grid.covering(
        (lo[0] - 16.0, lo[1] - 13.0, lo[2] - 3.0), (hi[0] + 11.0, hi[1] + 13.0, hi[2] + 3.0), VOXEL_MM
    )


@dataclass(frozen=True)
class _Site:
    """The treated body on the cement grid: voxel-centre coordinates and regions (bool)."""

    spine: Spine
    grid: Grid
    tip: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    outer: np.ndarray  # inside the body's outer surface
    core: np.ndarray  # the trabecular core, off the needle
    cortex: np.ndarray  # the cortical shell, off the needle
    free: np.ndarray  # off the needle and off the grid's faces

    @property
    def body(self):
        return self.spine.body

    @property
    def clipped(self) -> np.ndarray:
        """The core, kept clear of the posterior wall (leak scenarios)."""
        return self.core & (self.u <= self.body.u_posterior - _LEAK_WALL_CLEARANCE_MM)


def plan_scenario(name: str, spine: Spine, needle: Needle, grid: Grid, rng: np.random.Generator) -> Plan:
    """Build the :class:`Plan` of scenario ``name`` for this anatomy and needle."""
    body = spine.body
    u, v, w = grid.centres((slice(None),) * 3)
    outer = body.inside(u, v, w)
    free = needle.distance_to_axis(u, v, w) > needle.radius_mm + 0.35
    free[[0, -1], :, :] = free[:, [0, -1], :] = free[:, :, [0, -1]] = False
    core = body.inside(u, v, w, shrink=body.shell + 0.1) & free
    site = _Site(spine, grid, needle.tip, u, v, w, outer, core, outer & ~core & free, free)
    body_ml = rng.uniform(1.2, 2.2)  # the body's volume before a leak scenario's end
    return _PLANNERS[name](site, body_ml, rng)


def _no_leak(site: _Site, body_ml: float, rng) -> Plan:
    n = int(rng.uniform(2.0, 3.5) * _VOXELS_PER_ML)
    return Plan(None, site.core & (site.u <= site.body.u_posterior - 9.5), None, n, compactness=1.0)


def _posterior_approach(site: _Site, body_ml: float, rng) -> Plan:
    p_wall = site.body.u_posterior
    allowed = site.core & (site.u <= p_wall - 1.4)
    target = allowed & (site.u > p_wall - 1.9) & _band(site.body, site.u, site.v, site.w, margin=2.0)
    return Plan(None, allowed, ColumnTarget(target, 3), _MAX_VOXELS, _POSTERIOR, 1.0, 0.7)


def _posterior_breach(site: _Site, body_ml: float, rng) -> Plan:
    body, u, v, w = site.body, site.u, site.v, site.w
    p_wall = body.u_posterior
    # A crack straight behind the tip, where the posteriorly drifting front arrives.
    vg, wg = site.tip[1], float(np.clip(site.tip[2], -2.0, 2.0))
    gate = site.cortex & (u >= p_wall - body.shell - 0.5) & (np.abs(w - wg) <= 5.0) & (np.abs(v - vg) <= 5.0)
    canal = (u > p_wall) & (u <= p_wall + 9.0) & (np.abs(w) <= 7.0) & _band(body, u, v, w, margin=3.0)
    canal &= ~site.outer & site.free
    # The body's own stop is met at once: reaching the crack (then doubling) ends it.
    return Plan(
        "posterior",
        site.core,
        CountTarget(site.core, 1),
        _MAX_VOXELS,
        _POSTERIOR,
        1.0,
        0.7,
        gate=gate,
        leak_compartment=canal,
        leak_stop=ColumnTarget(canal & (u >= p_wall + 3.0), 3),
        leak_drift=_POSTERIOR,
    )


def _disc_leak(site: _Site, body_ml: float, rng) -> Plan:
    body, u, v, w = site.body, site.u, site.v, site.w
    superior = bool(rng.integers(2))
    ug = min(site.tip[0] + rng.uniform(-2.0, 6.0), body.u_posterior - 8.0)
    wg = rng.uniform(-4.0, 4.0)
    side = v < body.vc if superior else v > body.vc
    gate = site.cortex & side & (np.abs(u - ug) <= 2.0) & (np.abs(w - wg) <= 2.0)
    spine = site.spine
    neighbour = spine.bodies[spine.treated - 1 if superior else spine.treated + 1]
    if superior:
        space = (v > neighbour.v_bottom(u, w)) & (v < body.v_top(u, w))
    else:
        space = (v < neighbour.v_top(u, w)) & (v > body.v_bottom(u, w))
    near = (u - ug) ** 2 + (w - wg) ** 2 <= 14.0**2
    disc = space & body.inside(u, body.vc, w, shrink=1.0) & near & site.free
    disc &= u <= body.u_posterior - _LEAK_WALL_CLEARANCE_MM
    gate_centre = np.array([ug, body.v_top(ug, wg) if superior else body.v_bottom(ug, wg), wg])
    leak_class = "disc_superior" if superior else "disc_inferior"
    return _leak_plan(leak_class, site, body_ml, gate_centre, gate, disc, _volume_target(disc, rng))


def _anterior_leak(site: _Site, body_ml: float, rng) -> Plan:
    u, v, w, a_wall = site.u, site.v, site.w, site.body.u_anterior
    vg, wg = site.tip[1] + rng.uniform(-2.0, 2.0), rng.uniform(-3.0, 3.0)
    gate = site.cortex & (u <= a_wall + 3.0) & (np.abs(v - vg) <= 2.0) & (np.abs(w - wg) <= 2.0)
    blob = ((u - (a_wall - 6.0)) / 7.0) ** 2 + ((v - vg) / 9.0) ** 2 + ((w - wg) / 11.0) ** 2 <= 1.0
    front = blob & ~site.outer & (u < a_wall + 2.0) & site.free
    gate_centre = np.array([a_wall, vg, wg])
    return _leak_plan("anterior", site, body_ml, gate_centre, gate, front, _volume_target(front, rng))


def _venous_leak(site: _Site, body_ml: float, rng) -> Plan:
    body, u, v, w, a_wall = site.body, site.u, site.v, site.w, site.body.u_anterior
    vg, wg = body.vc + rng.uniform(0.15, 0.3) * body.height_anterior, rng.uniform(-3.0, 3.0)
    gate = site.cortex & (u <= a_wall + 3.0) & (np.abs(v - vg) <= 1.0) & (np.abs(w - wg) <= 1.0)
    tube, arc, length = _vein(site.grid, u, v, w, a_wall, vg, wg, rng)
    tube &= ~site.outer & site.free
    target = CountTarget(tube & (arc >= length - 1.5), 3)
    gate_centre = np.array([a_wall, vg, wg])
    return _leak_plan("venous", site, body_ml, gate_centre, gate, tube, target)


_PLANNERS = {
    "no_leak": _no_leak,
    "posterior_approach": _posterior_approach,
    "posterior_breach": _posterior_breach,
    "venous_leak": _venous_leak,
    "disc_leak": _disc_leak,
    "anterior_leak": _anterior_leak,
}


def _band(body, u, v, w, margin: float):
    """Between the body's endplates (outer surfaces), ``margin`` mm inside them."""
    return (v >= body.v_top(u, w) + margin) & (v <= body.v_bottom(u, w) - margin)


def _volume_target(compartment: np.ndarray, rng: np.random.Generator) -> CountTarget:
    """Stop the leak at 0.15-0.35 mL (or at a third of its compartment, if smaller)."""
    need = min(int(rng.uniform(0.15, 0.35) * _VOXELS_PER_ML), int(compartment.sum()) // 3)
    return CountTarget(compartment, max(need, 1))


def _leak_plan(leak_class, site: _Site, body_ml, gate_centre, gate, compartment, leak_stop) -> Plan:
    """A leak through ``gate``: the body's cement drifts toward it, then the leak fills."""
    towards = gate_centre - site.tip
    towards /= np.linalg.norm(towards)
    allowed = site.clipped
    return Plan(
        leak_class,
        allowed,
        CountTarget(allowed, int(body_ml * _VOXELS_PER_ML)),
        _MAX_VOXELS,
        towards,
        0.8,
        0.6,
        gate=gate,
        leak_compartment=compartment,
        leak_stop=leak_stop,
    )


def _vein(grid: Grid, u, v, w, a_wall: float, vg: float, wg: float, rng: np.random.Generator):
    """A curved vein leaving the anterior cortex: it runs forward, then bends caudally.

    Returns the tube (bool, radius 1 mm), the arc length of each voxel's nearest
    centreline point (mm) and the vein's length (mm).
    """
    radius_curve, length = rng.uniform(10.0, 14.0), rng.uniform(14.0, 20.0)
    s = np.arange(0.0, length + 1e-9, 0.2)
    centre = np.stack(
        [
            a_wall - radius_curve * np.sin(s / radius_curve),
            vg + radius_curve * (1.0 - np.cos(s / radius_curve)),
            wg + 0.1 * s,
        ],
        axis=1,
    )
    shape = np.broadcast_shapes(u.shape, v.shape, w.shape)
    tube = np.zeros(shape, dtype=bool)
    arc = np.full(shape, -1.0)
    lo, hi = centre.min(axis=0) - 1.0, centre.max(axis=0) + 1.0
    box = tuple(grid.index_range(i, lo[i], hi[i]) for i in range(3))
    bu, bv, bw = grid.centres(box)
    best = np.full(np.broadcast_shapes(bu.shape, bv.shape, bw.shape), np.inf)
    best_arc = np.zeros_like(best)
    for (cu, cv, cw), sk in zip(centre, s):
        d2 = (bu - cu) ** 2 + (bv - cv) ** 2 + (bw - cw) ** 2
        closer = d2 < best
        best = np.where(closer, d2, best)
        best_arc = np.where(closer, sk, best_arc)
    tube[box] = best <= 1.0**2
    arc[box] = best_arc
    return tube, arc, length


@dataclass
class Fill:
    """The cement of one injection, in fill order.

    Attributes
    ----------
    grid : Grid
    body_order, leak_order : ndarray, int64
        Flat voxel indices filled by the body's and the leak's invasions, in order.
    leak_start : int
        Number of body voxels filled when the leak starts (``len(body_order)`` if never).
    leak_class : str or None
    in_compartment : ndarray, bool, shape [len(leak_order)]
        Which leak voxels lie outside the body (the gate's do not).
    reached : bool
        Whether the scenario's end state is reached.
    """

    grid: Grid
    body_order: np.ndarray
    leak_order: np.ndarray
    leak_start: int
    leak_class: str | None
    in_compartment: np.ndarray
    reached: bool

    @property
    def voxels(self) -> np.ndarray:
        """All filled voxels: the body's, then the leak's (flat indices)."""
        return np.concatenate([self.body_order, self.leak_order])

    @property
    def outside(self) -> np.ndarray:
        """Which of :attr:`voxels` lie in the leak compartment, outside the body (bool)."""
        return np.concatenate([np.zeros(self.body_order.size, bool), self.in_compartment])

    @property
    def volume_ml(self) -> float:
        return (self.body_order.size + self.leak_order.size) / _VOXELS_PER_ML

    def fill_fractions(self) -> np.ndarray:
        """When each voxel of :attr:`voxels` fills, as a fraction of the injection's duration.

        The body fills at a constant volume rate over the whole injection; the leak starts
        when the body holds ``leak_start`` voxels and fills at its own constant rate,
        ending with the body.
        """
        nb, nl = self.body_order.size, self.leak_order.size
        body = np.arange(1, nb + 1) / max(nb, 1)
        leak_start = self.leak_start / max(nb, 1)
        leak = leak_start + (1.0 - leak_start) * np.arange(1, nl + 1) / max(nl, 1)
        return np.concatenate([body, leak])

    def duration_s(self, tip: np.ndarray, available_s: float, share: float, speed_mm_s: tuple[float, float]) -> float:
        """Duration of the injection, s: ``share`` of ``available_s``, within the speed range.

        The front's average speed (the farthest cement in the body from the tip, in the
        lateral image plane, over the time since the start) is kept within ``speed_mm_s``;
        a leak compartment fills at its own pace. When even the fastest injection overruns
        ``available_s``, the injection slows down further, so that the part that fits in
        the clip also keeps its average speed in range.
        """
        in_body = ~self.outside
        voxels = self.voxels[in_body]
        if voxels.size == 0:
            return share * available_s
        iu, iv, _ = np.unravel_index(voxels, self.grid.shape)
        du = self.grid.origin_mm[0] + iu * self.grid.spacing_mm - tip[0]
        dv = self.grid.origin_mm[1] + iv * self.grid.spacing_mm - tip[1]
        phase = self.fill_fractions()[in_body]
        order = np.argsort(phase, kind="stable")
        phase, reach = phase[order], np.maximum.accumulate(np.hypot(du, dv)[order])
        slow, fast = speed_mm_s
        duration = max(min(share * available_s, reach[-1] / slow), reach[-1] / fast)
        if duration > available_s:
            fits = reach <= fast * available_s  # the front within reach of the clip's time
            duration = max(duration, available_s / phase[fits].max()) if fits.any() else duration
        return max(duration, 1e-3)


def grow(plan: Plan, grid: Grid, needle: Needle, rng: np.random.Generator) -> Fill:
    """Grow the cement of ``plan`` from the needle tip (deterministic given ``rng``)."""
    field = permeability_field(grid.shape, rng)
    u, v, w = grid.centres((slice(None),) * 3)
    tip = needle.tip
    body_thr = field + _bias(u, v, w, tip, plan.compactness, plan.body_drift, plan.drift)
    seed = _seed_voxel(grid, plan.body_allowed, tip - 1.0 * needle.direction)
    body = invade(
        body_thr,
        plan.body_allowed,
        [seed],
        stop=plan.body_stop,
        max_voxels=plan.body_volume,
        watch=plan.gate,
        min_after_touch=plan.min_after_touch,
    )
    empty = np.zeros(0, dtype=np.int64)
    if plan.gate is None:
        return Fill(grid, body.order, empty, body.order.size, None, np.zeros(0, bool), body.reached)
    if body.touch_count is None:
        return Fill(grid, body.order, empty, body.order.size, plan.leak_class, np.zeros(0, bool), False)
    leak_start = max(body.touch_count, int(np.ceil(rng.uniform(*_LEAK_START) * body.order.size)))
    gate_centre = np.array(np.unravel_index(body.touched, grid.shape), float) * grid.spacing_mm + grid.origin_mm
    leak_thr = field + _bias(u, v, w, gate_centre, 0.3, plan.leak_drift, 0.25)
    leak = invade(
        leak_thr,
        plan.gate | plan.leak_compartment,
        [int(body.touched)],
        stop=plan.leak_stop,
        max_voxels=_MAX_VOXELS,
    )
    in_compartment = plan.leak_compartment.ravel()[leak.order]
    return Fill(grid, body.order, leak.order, leak_start, plan.leak_class, in_compartment, body.reached and leak.reached)


def _bias(u, v, w, centre, compactness: float, direction, drift: float) -> np.ndarray:
    """Threshold bias: ``compactness`` per 10 mm from ``centre``, minus ``drift`` per 10 mm along ``direction``."""
    du, dv, dw = u - centre[0], v - centre[1], w - centre[2]
    bias = compactness * np.sqrt(du**2 + dv**2 + dw**2) / 10.0
    if direction is not None and drift:
        bias = bias - drift * (du * direction[0] + dv * direction[1] + dw * direction[2]) / 10.0
    return bias


def _seed_voxel(grid: Grid, allowed: np.ndarray, point: np.ndarray) -> int:
    """The allowed voxel nearest to ``point`` (flat index)."""
    idx = np.argwhere(allowed)
    centres = idx * grid.spacing_mm + np.asarray(grid.origin_mm)
    nearest = idx[np.argmin(((centres - point) ** 2).sum(axis=1))]
    return int(np.ravel_multi_index(tuple(nearest), grid.shape))
