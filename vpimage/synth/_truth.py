"""Ground-truth measures of the phantom, computed from the truth masks and corners.

These definitions follow CONTRACT.md and are implemented here on their own, never by the
analysis, so that the analysis can be scored against them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CORNER_NAMES",
    "VISIBILITY_FLOOR_MM",
    "alert_events",
    "alert_level",
    "frame_records",
    "leak_seen",
    "wall_measures",
]

#: Projected cement thickness above which the truth mask holds a pixel, mm.
VISIBILITY_FLOOR_MM = 0.5
CORNER_NAMES = ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior")
_LEVELS = ("ok", "warn", "stop")
_WARN_WALL_MM, _STOP_WALL_MM, _WARN_DEPTH, _HOLD_S = 5.0, 2.0, 0.75, 0.5
_TIME_EPS_S = 1e-9


def _signed_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Distance of ``points [n, 2]`` to the line ``a``-``b``, positive on the side of ``inside``."""
    d = b - a
    normal = np.array([-d[1], d[0]]) / np.hypot(d[0], d[1])
    if normal @ (inside - a) < 0:
        normal = -normal
    return (points - a) @ normal


def wall_measures(mask: np.ndarray, corners: dict) -> tuple[float | None, float | None]:
    """``front_to_wall_px`` and ``depth_fraction`` of one frame's truth mask.

    Parameters
    ----------
    mask : ndarray, bool, shape [rows, cols]
        Truth cement mask.
    corners : dict
        The four corners, ``name -> (x, y)`` pixels.

    Returns
    -------
    front_to_wall_px : float or None
        Over the mask pixels in the body's band (between the superior and the inferior
        corner lines), the smallest signed distance to the posterior-wall line, px:
        positive on the body's side. None when no cement lies in the band.
    depth_fraction : float or None
        For the most posterior of those pixels, its position between the anterior wall
        line (0) and the posterior wall line (1).
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None, None
    p = np.stack([cols, rows], axis=1).astype(float)
    a_s, p_s, p_i, a_i = (np.asarray(corners[n], dtype=float) for n in CORNER_NAMES)
    band = (_signed_distance(p, a_s, p_s, a_i) >= 0) & (_signed_distance(p, a_i, p_i, a_s) >= 0)
    if not band.any():
        return None, None
    p = p[band]
    to_posterior = _signed_distance(p, p_s, p_i, a_s)
    k = int(np.argmin(to_posterior))
    to_anterior = _signed_distance(p[k : k + 1], a_s, a_i, p_s)[0]
    return float(to_posterior[k]), float(to_anterior / (to_anterior + to_posterior[k]))


def alert_level(front_to_wall_mm: float | None, depth_fraction: float | None, leaking: bool) -> str:
    """The CONTRACT default level of one frame, before the hold time."""
    if leaking or (front_to_wall_mm is not None and front_to_wall_mm <= _STOP_WALL_MM):
        return "stop"
    if (front_to_wall_mm is not None and front_to_wall_mm <= _WARN_WALL_MM) or (
        depth_fraction is not None and depth_fraction >= _WARN_DEPTH
    ):
        return "warn"
    return "ok"


def alert_events(time_s: np.ndarray, levels: list[str]) -> list[dict]:
    """Changes of the held alert level: ``[{"frame", "time_s", "level"}, ...]``, first ``ok`` at 0.

    A level is entered on the first frame that meets it and left only once it has not
    been met for the hold time (0.5 s): the held level at ``t`` is the highest raw level
    of the frames in ``(t - 0.5 s, t]``, with 1 ns of tolerance on frame times (sums of
    float intervals: at 10 fps a level last met at 0.1 s is left at 0.6 s).
    """
    rank = np.array([_LEVELS.index(level) for level in levels])
    events = [{"frame": 0, "time_s": 0.0, "level": "ok"}]
    current = 0
    for f, t in enumerate(time_s):
        recent = (t - time_s < _HOLD_S - _TIME_EPS_S) & (time_s <= t)
        held = int(rank[recent].max())
        if held != current:
            current = held
            events.append({"frame": f, "time_s": float(t), "level": _LEVELS[held]})
    return events


def _outside_body(points: np.ndarray, corners: dict) -> np.ndarray:
    """Whether each of ``points [n, 2]`` (``[x, y]`` px) lies outside the corners' quadrilateral."""
    a_s, p_s, p_i, a_i = (np.asarray(corners[n], dtype=float) for n in CORNER_NAMES)
    inside = np.ones(len(points), bool)
    for a, b, opposite in ((a_s, p_s, a_i), (p_s, p_i, a_s), (p_i, a_i, p_s), (a_i, a_s, p_s)):
        inside &= _signed_distance(points, a, b, opposite) >= 0
    return ~inside


def leak_seen(leak_masks: np.ndarray, corners_px: list[dict]) -> np.ndarray:
    """Frames in which the leak shows, as CONTRACT.md defines a leak: cement outside the body.

    A leak is seen once a pixel of its cement (above the visibility floor) lies outside
    the body the corners define in that frame. Cement that has left the body in 3-D but
    still projects over it (a vein running across the beam) is not yet a leak any single
    projection could show; once seen, a leak stays (cement does not vanish, and
    resampling on the moving pixel grid must not make a leak at the floor blink).

    Parameters
    ----------
    leak_masks : ndarray, bool, shape [frames, rows, cols]
        The leak's cement above the visibility floor, wherever it projects.
    corners_px : list of dict
        Each frame's corners, ``name -> [x, y]`` px.

    Returns
    -------
    ndarray, bool, shape [frames]
    """
    seen = np.zeros(len(leak_masks), bool)
    for f, (mask, corners) in enumerate(zip(leak_masks, corners_px)):
        rows, cols = np.nonzero(mask)
        seen[f] = bool(_outside_body(np.stack([cols, rows], axis=1).astype(float), corners).any())
    return np.logical_or.accumulate(seen)


def frame_records(
    masks: np.ndarray,
    corners_px: list[dict],
    time_s: np.ndarray,
    mm_per_px: float,
    leak_classes: list[list[str]],
    volume_ml: np.ndarray,
    view: str,
) -> tuple[list[dict], list[dict]]:
    """The truth file's ``frames`` and ``events``.

    Parameters
    ----------
    masks : ndarray, bool, shape [frames, rows, cols]
        Truth cement masks.
    corners_px : list of dict
        Each frame's corners, ``name -> [x, y]`` px.
    time_s : ndarray, shape [frames]
    mm_per_px : float
        Pixel size at the isocentre, mm.
    leak_classes : list of list of str
        The leak classes visible in each frame.
    volume_ml : ndarray, shape [frames]
        Injected cement volume by each frame, mL (an extra: it never decreases).
    view : {"lateral", "ap"}
        In AP the wall measures are null.
    """
    records, levels = [], []
    for f, mask in enumerate(masks):
        ftw_px, depth = wall_measures(mask, corners_px[f]) if view == "lateral" else (None, None)
        ftw_mm = None if ftw_px is None else ftw_px * mm_per_px
        area_px = int(mask.sum())
        levels.append(alert_level(ftw_mm, depth, bool(leak_classes[f])))
        records.append(
            {
                "frame": f,
                "time_s": float(time_s[f]),
                "cement_area_mm2": area_px * mm_per_px**2,
                "front_to_wall_mm": ftw_mm,
                "depth_fraction": depth,
                "leak_classes": list(leak_classes[f]),
                "vertebral_body": corners_px[f],
                "cement_area_px": area_px,
                "front_to_wall_px": ftw_px,
                "cement_volume_ml": float(volume_ml[f]),
            }
        )
    return records, alert_events(time_s, levels)
