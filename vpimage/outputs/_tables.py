"""frames.csv, events.json and summary.json (CONTRACT.md "What analyze --out DIR writes")."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from enum import Enum
from os import PathLike
from pathlib import PurePath
from typing import Any, Iterable, Sequence

import numpy as np

from vpimage._atomic import write_text_atomic
from vpimage.alerts import AlertLevel
from vpimage.engine import FrameResult
from vpimage.measures import LEAK_CLASSES

__all__ = ["FRAME_COLUMNS", "summarize_alerts", "to_json", "write_events_json", "write_frames_csv", "write_summary_json"]

# The columns of frames.csv that CONTRACT.md fixes, in its order; further FrameResult
# fields follow in their declared order.
FRAME_COLUMNS = (
    "frame",
    "time_s",
    "cement_area_px",
    "cement_area_mm2",
    "front_to_wall_px",
    "front_to_wall_mm",
    "depth_fraction",
    "front_speed_mm_s",
    "time_to_wall_s",
    "leak_area_mm2",
    "leak_classes",
    "alert",
    "reason",
)


def _columns() -> tuple[str, ...]:
    names = [f.name for f in dataclasses.fields(FrameResult)]
    return FRAME_COLUMNS + tuple(n for n in names if n not in FRAME_COLUMNS)


def _cell(value: Any) -> str:
    """One CSV field: NaN empty, floats to 6 significant digits (no ``-0``: a front at rest
    reads 0), lists ``;``-joined."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(value) else f"{float(value) + 0.0:.6g}"
    if isinstance(value, (tuple, list)):
        return ";".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def write_frames_csv(path: str | PathLike, results: Iterable[FrameResult]) -> None:
    """Write ``frames.csv``: a row per frame, CONTRACT.md's columns first.

    Parameters
    ----------
    path : str or PathLike
        Destination; written atomically.
    results : iterable of FrameResult
        In frame order.
    """
    columns = _columns()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for result in results:
        writer.writerow([_cell(getattr(result, name)) for name in columns])
    write_text_atomic(path, buffer.getvalue())


def to_json(value: Any) -> Any:
    """``value`` as plain JSON types: NaN and infinities become null, enums their value,
    numpy scalars and arrays Python numbers and lists, tuples lists, paths strings."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value))
    return value


def _write_json(path: str | PathLike, value: Any) -> None:
    write_text_atomic(path, json.dumps(to_json(value), indent=2, allow_nan=False) + "\n")


def write_events_json(path: str | PathLike, events: Sequence[dict]) -> None:
    """Write ``events.json``: the list of ``{"frame", "time_s", "level", "reason"}``
    (from :func:`vpimage.alerts.events`), atomically."""
    _write_json(path, list(events))


def write_summary_json(path: str | PathLike, summary: dict) -> None:
    """Write ``summary.json`` (CONTRACT.md's keys; NaN becomes null), atomically."""
    _write_json(path, summary)


def summarize_alerts(results: Sequence[FrameResult]) -> dict[str, Any]:
    """The summary.json keys that follow from the frame results alone.

    Returns
    -------
    dict
        ``frames``, ``max_alert`` (worst
        level, ok < unreliable < warn < stop), ``first_warn_s`` (first frame at ``warn``
        or ``stop``, s), ``first_stop_s``, ``leak_classes`` (the classes of the leaks as the
        study ends, read from the last frame: a leak is classed by its shape, and its first
        frames, a short stub leaving the body, may look like another class than the
        channel or sheet it grows into), ``leak_classes_seen`` (every class any frame
        reported), both in :data:`~vpimage.measures.LEAK_CLASSES` order, and
        ``final_cement_area_mm2``, ``first_cement_s`` (first frame with cement); times are
        None when never reached.
    """
    levels = [AlertLevel(r.alert) for r in results]

    def first(wanted) -> float | None:
        return next((float(r.time_s) for r, level in zip(results, levels) if level in wanted), None)

    seen = {name for r in results for name in r.leak_classes}
    final = set(results[-1].leak_classes) if results else set()
    return {
        "frames": len(results),
        "max_alert": max(levels, key=lambda level: level.rank, default=AlertLevel.OK).value,
        "first_warn_s": first({AlertLevel.WARN, AlertLevel.STOP}),
        "first_stop_s": first({AlertLevel.STOP}),
        "leak_classes": [name for name in LEAK_CLASSES if name in final],
        "leak_classes_seen": [name for name in LEAK_CLASSES if name in seen],
        "final_cement_area_mm2": float(results[-1].cement_area_mm2) if results else math.nan,
        "first_cement_s": next((float(r.time_s) for r in results if r.cement_area_px > 0), None),
    }
