"""Cement growth: invasion percolation on a voxel grid, and its projection along the beam.

Invasion percolation (Wilkinson and Willemsen 1983) fills, one voxel at a time, the
empty voxel with the lowest entry threshold among those touching the filled cluster.
Thresholds are a spatially correlated random permeability field plus a bias (a pull toward
compact growth around the tip and, in some scenarios, a drift toward a target), so the
cement grows as a monotone, ragged cloud: a voxel once filled stays filled.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vpimage.synth._anatomy import Grid

__all__ = ["ColumnTarget", "CountTarget", "Invasion", "invade", "permeability_field", "project_fill"]


def permeability_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Entry thresholds in ``[0, 1)`` with about 1 mm correlation (uniform marginals).

    Returns float64 ``[nu, nv, nw]``.
    """
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=1.2)
    ranks = np.empty(noise.size)
    ranks[np.argsort(noise, axis=None)] = np.arange(noise.size) / noise.size
    return ranks.reshape(shape)


class CountTarget:
    """Stop once ``need`` voxels flagged in ``target`` (bool ``[nu, nv, nw]``) are filled."""

    def __init__(self, target: np.ndarray, need: int):
        self._flags = bytearray(target.ravel().astype(np.uint8).tobytes())
        self._need = need
        self._count = 0

    def reached(self, index: int) -> bool:
        if self._flags[index]:
            self._count += 1
        return self._count >= self._need


class ColumnTarget:
    """Stop once one lateral-projection column (``u, v``) holds ``need`` filled target voxels.

    A column of ``need`` voxels of 0.5 mm along the beam is cement that the truth mask sees
    (thickness above the visibility floor).
    """

    def __init__(self, target: np.ndarray, need: int):
        self._flags = bytearray(target.ravel().astype(np.uint8).tobytes())
        self._nw = target.shape[2]
        self._need = need
        self._columns: dict[int, int] = {}

    def reached(self, index: int) -> bool:
        if not self._flags[index]:
            return False
        column = index // self._nw
        n = self._columns.get(column, 0) + 1
        self._columns[column] = n
        return n >= self._need


@dataclass
class Invasion:
    """Outcome of one invasion.

    Attributes
    ----------
    order : ndarray, int64, shape [n]
        Flat voxel indices in fill order.
    reached : bool
        True when the stop criterion was met (False: the domain or the cap ran out).
    touch_count : int or None
        Number of voxels filled when the cluster first touched a watched voxel.
    touched : int or None
        Flat index of that watched voxel.
    """

    order: np.ndarray
    reached: bool
    touch_count: int | None = None
    touched: int | None = None


def invade(
    thresholds: np.ndarray,
    allowed: np.ndarray,
    seeds: list[int],
    *,
    stop,
    max_voxels: int,
    watch: np.ndarray | None = None,
    min_after_touch: float = 0.0,
) -> Invasion:
    """Grow a cluster from ``seeds`` by invasion percolation.

    Parameters
    ----------
    thresholds : ndarray, float, shape [nu, nv, nw]
        Entry threshold of each voxel (lower fills first).
    allowed : ndarray, bool, shape [nu, nv, nw]
        Voxels the cement may enter; the grid's outer faces must be False.
    seeds : list of int
        Flat indices of the first filled voxels (they must be allowed).
    stop : object with ``reached(index) -> bool``, or None
        Consulted after each fill; None grows until ``max_voxels``.
    max_voxels : int
        Cap on the cluster size.
    watch : ndarray, bool, shape [nu, nv, nw], optional
        Voxels (not allowed) whose first contact with the cluster is recorded.
    min_after_touch : float
        When ``watch`` is given, the invasion goes on at least until the cluster holds
        ``min_after_touch`` times the voxels it held at first contact.
    """
    nu, nv, nw = allowed.shape
    offsets = (nv * nw, -nv * nw, nw, -nw, 1, -1)
    thr = thresholds.ravel().tolist()
    free = bytearray(allowed.ravel().astype(np.uint8).tobytes())
    watched = bytearray(watch.ravel().astype(np.uint8).tobytes()) if watch is not None else None
    heap: list[tuple[float, int]] = []
    for s in seeds:
        free[s] = 0
        heapq.heappush(heap, (thr[s], s))
    order: list[int] = []
    touch_count = touched = None
    reached = False
    done_stop = stop is None
    while heap and len(order) < max_voxels:
        _, index = heapq.heappop(heap)
        order.append(index)
        if not done_stop and stop.reached(index):
            done_stop = True
        for off in offsets:
            j = index + off
            if free[j]:
                free[j] = 0
                heapq.heappush(heap, (thr[j], j))
            elif watched is not None and touch_count is None and watched[j]:
                touch_count, touched = len(order), j
        if done_stop and stop is not None:
            if watched is None or (touch_count is not None and len(order) >= min_after_touch * touch_count):
                reached = True
                break
    if stop is None:
        reached = len(order) >= max_voxels
    return Invasion(np.asarray(order, dtype=np.int64), reached, touch_count, touched)


def project_fill(
    grid: Grid, voxels: np.ndarray, frame_of_voxel: np.ndarray, n_frames: int, view: str
) -> np.ndarray:
    """Cumulative projected thickness of cement per frame on the projection grid.

    Parameters
    ----------
    grid : Grid
        The cement grid.
    voxels : ndarray, int64, shape [n]
        Flat indices of filled voxels.
    frame_of_voxel : ndarray, int64, shape [n]
        The first frame in which each voxel is filled (``n_frames``: after the clip).
    n_frames : int
    view : {"lateral", "ap"}
        Lateral sums along ``w``, AP along ``u``.

    Returns
    -------
    ndarray, float32, shape [frames, nx, ny]
        Thickness along the beam, mm (``x``: ``u`` lateral or ``w`` AP; ``y``: ``v``).
    """
    nu, nv, nw = grid.shape
    iu, iv, iw = np.unravel_index(voxels, grid.shape)
    if view == "lateral":
        column, nx = iu * nv + iv, nu
    else:
        column, nx = iw * nv + iv, nw
    counts = np.bincount(frame_of_voxel * (nx * nv) + column, minlength=(n_frames + 1) * nx * nv)
    counts = counts.reshape(n_frames + 1, nx, nv)[:n_frames]
    return (np.cumsum(counts, axis=0) * grid.spacing_mm).astype(np.float32)
