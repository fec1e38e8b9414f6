"""Scoring of an analysis against a truth file (``vpimage evaluate RESULT_DIR TRUTH.json``).

The analysis is what ``vpimage analyze --out RESULT_DIR`` wrote (``frames.csv`` and
``masks.npz``; ``summary.json``, written last, marks it complete); the truth is a file in
CONTRACT.md's "Truth files" form, as ``vpimage synth --truth`` writes it, with its cement
masks in the npz it names in ``masks_file`` (key ``masks``, bool ``[frames, rows, cols]``).
Frames are matched by index, and frame ``i`` of both must have the same ``time_s`` (within
a tolerance for rounding, see :func:`_check_times`).
"""

from __future__ import annotations

import csv
import json
import math
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from vpimage._atomic import write_text_atomic
from vpimage._paths import path_argument
from vpimage.alerts import AlertLevel
from vpimage.errors import ArgumentError, InvalidStudyError
from vpimage.measures import LEAK_CLASSES
from vpimage.outputs import MASKS_FILE, read_masks_npz, read_npz_arrays, to_json

__all__ = ["DICE_MIN_AREA_MM2", "EVALUATION_FILE", "dice", "evaluate", "evaluation_json", "write_evaluation_json"]

# File name of the report in the analysis' output folder.
EVALUATION_FILE = "evaluation.json"

# The file analyze writes last: a result folder without it holds no complete result.
_SUMMARY_FILE = "summary.json"
_INCOMPLETE = f"an incomplete result (analyze writes {_SUMMARY_FILE} last)"

# The frames.csv columns the scoring reads.
_CSV_COLUMNS = ("frame", "time_s", "front_to_wall_mm", "depth_fraction", "leak_classes", "alert")
_CSV_NUMBERS = ("front_to_wall_mm", "depth_fraction")  # empty cells read as NaN

# The levels a truth file's events may hold.
_TRUTH_LEVELS = (AlertLevel.OK, AlertLevel.WARN, AlertLevel.STOP)

# The bar for mask agreement applies to frames with at least this much true cement, mm^2.
DICE_MIN_AREA_MM2 = 20.0

# Tolerance when placing a frame time after an event time, s (times are float sums).
_TIME_EPS_S = 1e-6

# How far a truth frame's time_s may lie from frames.csv's for the same frame (index), s:
# _TIME_MATCH_SHARE of the analysis' median frame interval, at least _TIME_MATCH_FLOOR_S, plus
# _TIME_SCALE_SLACK times the frame's time. Honest pairs differ by rounding and by a clock a
# little off: frames.csv writes 6 significant digits (off by at most 5e-6 of the time); the
# header's times are decimal strings; a truth may be rounded to 1 ms, or written at a nominal
# rate where the header has the true one (30 fps against NTSC's 29.97: 0.1 % of the time).
# Measured, analyze on the six sample_dicom studies and on synth runs (300 frames at 3-30 fps,
# legacy and enhanced XA, XRF and XA series, SC, jittered): at most 5.0e-5 s. A tenth of an
# interval (20 ms at 5 fps, 3.3 ms at 30) stays far below the half interval at which frame i
# would sit nearer frame i +- 1, and 0.2 % of the time far below a doubling, so a truth
# shifted by one frame, stretched or offset fails, on its first frames.
_TIME_MATCH_SHARE = 0.1
_TIME_MATCH_FLOOR_S = 0.002
_TIME_SCALE_SLACK = 0.002


def dice(truth, analysis) -> float | None:
    """Dice coefficient ``2 |T & A| / (|T| + |A|)`` of two masks of the same shape.

    Parameters
    ----------
    truth, analysis : ndarray, bool, any shape (e.g. [frames, rows, cols])
        The masks; all pixels are pooled.

    Returns
    -------
    float or None
        In [0, 1]; None when both masks are empty (Dice is undefined there).
    """
    truth = np.asarray(truth, dtype=bool)
    analysis = np.asarray(analysis, dtype=bool)
    return _dice_from_counts(np.logical_and(truth, analysis).sum(), truth.sum(), analysis.sum())


def _dice_from_counts(both, truth, analysis) -> float | None:
    """Dice from the pixel counts ``|T & A|``, ``|T|``, ``|A|``; None when both are empty."""
    total = int(truth) + int(analysis)
    return None if total == 0 else 2.0 * int(both) / total


def evaluate(result_dir: str | PathLike, truth_path: str | PathLike) -> dict[str, Any]:
    """Score the analysis in ``result_dir`` against the truth file ``truth_path``.

    Parameters
    ----------
    result_dir : str or PathLike
        A complete output folder of ``vpimage analyze`` (with its ``summary.json``, a
        JSON object): ``frames.csv`` is required, ``masks.npz`` is used when present.
    truth_path : str or PathLike
        Truth JSON (CONTRACT.md "Truth files"); its ``masks_file``, when not null, names
        the truth masks npz relative to the JSON's folder.

    Returns
    -------
    dict
        Plain JSON values, None where a score is undefined:

        - ``frames``: number of frames scored (matched by index).
        - ``dice``: Dice of the cement masks, all frames pooled; ``dice_frame_mean``: the
          mean of the per-frame Dice over frames where either mask has cement. None
          when either side has no masks. ``dice_min_large_frames``: the smallest per-frame
          Dice over the frames whose truth ``cement_area_mm2`` is at least
          :data:`DICE_MIN_AREA_MM2` (``dice_large_frames`` of them); None when none.
        - ``front_to_wall_frames``: frames whose truth ``front_to_wall_mm`` is not null
          (cement in the body); ``front_to_wall_unmeasured_frames``: those of them the
          analysis left without a value (excluded from the errors below).
        - ``front_to_wall_abs_error_mm_median``, ``front_to_wall_abs_error_mm_p95``:
          median and 95th percentile (linear interpolation) of
          ``|analysis - truth| front_to_wall_mm`` over the frames measured by both, mm.
        - ``depth_fraction_abs_error_median``, ``depth_fraction_abs_error_p95``: the same
          for ``depth_fraction`` (a fraction of the body's depth).
        - ``first_warn_s``, ``first_stop_s``: ``{"analysis", "truth", "difference",
          "difference_frames"}``, s from the first frame; a warn is first reached at
          ``warn`` or ``stop``; ``difference`` is analysis minus truth, s, and
          ``difference_frames`` the same in frames (1: one frame interval later, also
          with jittered frame times); None when either side never reaches it.
        - ``leak_classes_found``, ``leak_classes_missed``, ``leak_classes_spurious``:
          the study's leak classes (those of its last frame, as summary.json reports
          them) found by both, by the truth only, by the analysis only.
        - ``leak_class_frames``: frames where the truth or the analysis has a leak;
          ``leak_class_frame_agreement``: the share of them whose classes are the same
          (the early frames of a leak, a stub leaving the body, are where they differ);
          None when there are none.
        - ``alert_agreement``: the share of frames whose analysis alert equals the truth
          level held at that frame (an ``unreliable`` frame never agrees).
        - ``per_frame``: one ``{"frame", "time_s", "alert", "truth_alert", "alert_agrees",
          "dice", "front_to_wall_error_mm", "depth_fraction_error"}`` per frame (errors
          signed, analysis minus truth; None where either side has no value; ``dice``
          None without masks or with both masks empty).

    Raises
    ------
    InvalidStudyError
        A missing or malformed file (named in the error), a result folder without a
        readable ``summary.json`` (an incomplete result), or frame counts, frame times
        (``time_s`` of frame ``i`` in frames.csv and the truth, see :func:`_check_times`)
        or mask shapes that do not match.
    """
    result_dir = path_argument(result_dir, "result_dir")
    truth_path = path_argument(truth_path, "truth_path")
    if not result_dir.is_dir():
        raise InvalidStudyError(result_dir, "no such result folder")
    _check_complete(result_dir / _SUMMARY_FILE)
    csv_path = result_dir / "frames.csv"
    analysis = _read_frames_csv(csv_path)
    truth = _read_truth(truth_path)
    n = len(truth["frames"])
    if len(analysis["frame"]) != n:
        raise InvalidStudyError(csv_path, f"{len(analysis['frame'])} frames, but the truth file {truth_path} has {n}")
    _check_times(truth_path, truth, csv_path, analysis["time_s"])

    signed = {
        name: analysis[name] - np.array([_number(f.get(name)) for f in truth["frames"]], dtype=float)
        for name in _CSV_NUMBERS
    }
    in_body = np.array([_is_number(f["front_to_wall_mm"]) for f in truth["frames"]], dtype=bool)
    measured = np.isfinite(signed["front_to_wall_mm"])

    truth_levels = _truth_levels(truth)
    truth_classes = [set(f["leak_classes"]) for f in truth["frames"]]
    analysis_classes = [set(names) for names in analysis["leak_classes"]]
    truth_leaks = truth_classes[-1] if n else set()
    analysis_leaks = analysis_classes[-1] if n else set()
    leak_frames = [(a, t) for a, t in zip(analysis_classes, truth_classes) if a or t]

    report: dict[str, Any] = {"frames": n}
    counts = _mask_counts(result_dir / MASKS_FILE, truth_path, truth, n)
    report.update(_mask_scores(counts, truth))
    report.update(
        {
            "front_to_wall_frames": int(in_body.sum()),
            "front_to_wall_unmeasured_frames": int((in_body & ~measured).sum()),
            **_abs_errors("front_to_wall_abs_error_mm", signed["front_to_wall_mm"]),
            **_abs_errors("depth_fraction_abs_error", signed["depth_fraction"]),
            "first_warn_s": _timing(analysis, truth_levels, truth, {AlertLevel.WARN, AlertLevel.STOP}),
            "first_stop_s": _timing(analysis, truth_levels, truth, {AlertLevel.STOP}),
            "leak_classes_found": [c for c in LEAK_CLASSES if c in truth_leaks & analysis_leaks],
            "leak_classes_missed": [c for c in LEAK_CLASSES if c in truth_leaks - analysis_leaks],
            "leak_classes_spurious": [c for c in LEAK_CLASSES if c in analysis_leaks - truth_leaks],
            "leak_class_frames": len(leak_frames),
            "leak_class_frame_agreement": float(np.mean([a == t for a, t in leak_frames])) if leak_frames else None,
            "alert_agreement": float(np.mean([a == t for a, t in zip(analysis["alert"], truth_levels)])) if n else None,
        }
    )
    report["per_frame"] = [
        {
            "frame": f,
            "time_s": analysis["time_s"][f],
            "alert": analysis["alert"][f].value,
            "truth_alert": AlertLevel(truth_levels[f]).value,
            "alert_agrees": analysis["alert"][f] == truth_levels[f],
            "dice": _dice_from_counts(*counts[f]) if counts is not None else None,
            "front_to_wall_error_mm": _value(signed["front_to_wall_mm"][f]),
            "depth_fraction_error": _value(signed["depth_fraction"][f]),
        }
        for f in range(n)
    ]
    return report


def _abs_errors(prefix: str, signed: np.ndarray) -> dict[str, float | None]:
    """``{prefix}_median`` and ``{prefix}_p95`` of ``|signed|`` over its finite values (None if none)."""
    errors = np.abs(signed[np.isfinite(signed)])
    if not errors.size:
        return {f"{prefix}_median": None, f"{prefix}_p95": None}
    return {f"{prefix}_median": float(np.median(errors)), f"{prefix}_p95": float(np.percentile(errors, 95))}


def _value(number: float) -> float | None:
    return float(number) if math.isfinite(number) else None


def evaluation_json(report: dict) -> str:
    """The report of :func:`evaluate` as JSON text (NaN becomes null), newline-terminated."""
    return json.dumps(to_json(report), indent=2, allow_nan=False) + "\n"


def write_evaluation_json(path: str | PathLike, report: dict) -> None:
    """Write the report of :func:`evaluate` to ``path`` as :func:`evaluation_json`, atomically."""
    write_text_atomic(path, evaluation_json(report))


def _number(value) -> float:
    """A JSON number as float, null as NaN."""
    return math.nan if value is None else float(value)


def _first_frame(levels, wanted: set) -> int | None:
    return next((f for f, level in enumerate(levels) if level in wanted), None)


def _timing(analysis: dict, truth_levels: list, truth: dict, wanted: set) -> dict:
    """First time either side is at a level in ``wanted``; analysis minus truth, s and frames."""
    found = _first_frame(analysis["alert"], wanted)
    expected = _first_frame(truth_levels, wanted)
    both = found is not None and expected is not None
    time_s = [float(f["time_s"]) for f in truth["frames"]]
    return {
        "analysis": None if found is None else float(analysis["time_s"][found]),
        "truth": None if expected is None else time_s[expected],
        "difference": float(analysis["time_s"][found]) - time_s[expected] if both else None,
        "difference_frames": found - expected if both else None,
    }


def _truth_levels(truth: dict) -> list[AlertLevel]:
    """The truth's held level at each frame: that of its last event at or before the frame."""
    events = sorted(truth["events"], key=lambda e: e["time_s"])
    levels = []
    for record in truth["frames"]:
        level = AlertLevel.OK
        for event in events:
            if event["time_s"] > record["time_s"] + _TIME_EPS_S:
                break
            level = event["level"]
        levels.append(level)
    return levels


def _mask_counts(analysis_path: Path, truth_path: Path, truth: dict, n: int) -> np.ndarray | None:
    """Per frame ``[|T & A|, |T|, |A|]`` (int ``[n, 3]``); None when either side has no masks."""
    if truth.get("masks_file") is None or not analysis_path.exists():
        return None
    truth_masks = _read_truth_masks(truth_path.parent / truth["masks_file"], n)
    masks, _ = read_masks_npz(analysis_path)
    if masks.shape != truth_masks.shape:
        raise InvalidStudyError(
            analysis_path, f"masks of shape {masks.shape}, but the truth masks have {truth_masks.shape}"
        )
    pixels = [m.sum(axis=(1, 2)) for m in (truth_masks & masks, truth_masks, masks)]
    return np.stack(pixels, axis=1)


def _mask_scores(counts: np.ndarray | None, truth: dict) -> dict:
    """``dice``, ``dice_frame_mean``, ``dice_min_large_frames``, ``dice_large_frames``."""
    if counts is None:
        return {"dice": None, "dice_frame_mean": None, "dice_min_large_frames": None, "dice_large_frames": 0}
    per_frame = [_dice_from_counts(*row) for row in counts]
    defined = [d for d in per_frame if d is not None]
    large = [
        d
        for d, record in zip(per_frame, truth["frames"])
        if _number(record.get("cement_area_mm2")) >= DICE_MIN_AREA_MM2 and d is not None
    ]
    return {
        "dice": _dice_from_counts(*counts.sum(axis=0)),
        "dice_frame_mean": float(np.mean(defined)) if defined else None,
        "dice_min_large_frames": min(large) if large else None,
        "dice_large_frames": len(large),
    }


def _read_truth_masks(path: Path, n: int) -> np.ndarray:
    (masks,) = read_npz_arrays(path, ("masks",), "truth masks")
    if masks.dtype != bool or masks.ndim != 3 or masks.shape[0] != n:
        raise InvalidStudyError(
            path, f"truth masks must be bool [{n}, rows, cols] (one per truth frame); got {masks.dtype} {masks.shape}"
        )
    return masks


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidStudyError(path, f"cannot read: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # (also bad UTF-8, too many digits, too deep a nesting)
        raise InvalidStudyError(path, f"not valid JSON: {error}") from None


def _check_complete(path: Path) -> None:
    """Refuse a result whose ``summary.json`` (``path``) is missing or not a JSON object."""
    try:
        summary = _read_json(path)
    except InvalidStudyError as error:
        raise InvalidStudyError(path, f"{_INCOMPLETE}: {error.reason}") from None
    if not isinstance(summary, dict):
        raise InvalidStudyError(path, f"{_INCOMPLETE}: not a JSON object")


def _is_number(value) -> bool:
    """A finite JSON number: not a bool, NaN, an infinity, nor an integer beyond float range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _read_truth(path: Path) -> dict:
    """The truth JSON, checked for what the scoring reads."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not isinstance(data.get("events"), list):
        raise InvalidStudyError(path, 'a truth file must be an object with the lists "frames" and "events"')
    for i, record in enumerate(data["frames"]):
        if not isinstance(record, dict):
            raise InvalidStudyError(path, f"frames[{i}] is not an object")
        if not _is_number(record.get("time_s")):
            raise InvalidStudyError(path, f'frames[{i}]: "time_s" must be a number; got {record.get("time_s")!r}')
        missing = [name for name in (*_CSV_NUMBERS, "cement_area_mm2") if name not in record]
        if missing:
            raise InvalidStudyError(path, f"frames[{i}] has no {', '.join(missing)}")
        for name in _CSV_NUMBERS:
            value = record[name]
            if value is not None and not _is_number(value):
                raise InvalidStudyError(path, f'frames[{i}]: "{name}" must be a number or null; got {value!r}')
        area = record["cement_area_mm2"]
        if not _is_number(area) or area < 0:
            raise InvalidStudyError(path, f'frames[{i}]: "cement_area_mm2" must be a number >= 0; got {area!r}')
        leaks = record.get("leak_classes")
        if not isinstance(leaks, list) or any(name not in LEAK_CLASSES for name in leaks):
            raise InvalidStudyError(
                path, f'frames[{i}]: "leak_classes" must be a list of {", ".join(LEAK_CLASSES)}; got {leaks!r}'
            )
    back = _first_step_back([record["time_s"] for record in data["frames"]])
    if back is not None:
        times = (data["frames"][back - 1]["time_s"], data["frames"][back]["time_s"])
        raise InvalidStudyError(path, f'frames[{back}]: "time_s" must increase; {times[1]:g} follows {times[0]:g}')
    for i, event in enumerate(data["events"]):
        level = event.get("level") if isinstance(event, dict) else None  # (any JSON value: a list, unhashable)
        if level not in [lv.value for lv in _TRUTH_LEVELS] or not _is_number(event.get("time_s")):
            raise InvalidStudyError(path, f'events[{i}] must be {{"level": ok|warn|stop, "time_s": number}}; got {event!r}')
    masks_file = data.get("masks_file")
    if masks_file is not None and not isinstance(masks_file, str):
        raise InvalidStudyError(path, f'"masks_file" must be a file name or null; got {masks_file!r}')
    data["events"] = [dict(e, level=AlertLevel(e["level"])) for e in data["events"]]
    return data


def _read_frames_csv(path: Path) -> dict:
    """The columns of frames.csv the scoring needs, as arrays and lists, in frame order."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise InvalidStudyError(path, f"missing column(s) {', '.join(missing)}")
            rows = list(reader)
    except OSError as error:
        raise InvalidStudyError(path, f"cannot read: {error.strerror or error}") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise InvalidStudyError(path, f"not a readable CSV: {error}") from None
    columns: dict[str, Any] = {name: [] for name in _CSV_COLUMNS}
    for line, row in enumerate(rows, start=2):
        try:
            columns["frame"].append(int(row["frame"]))
            columns["time_s"].append(_finite_cell(row, "time_s"))
            for name in _CSV_NUMBERS:
                columns[name].append(_finite_cell(row, name) if row[name] else math.nan)
            columns["alert"].append(AlertLevel(row["alert"]))
        except (TypeError, ValueError) as error:
            raise InvalidStudyError(path, f"line {line}: {error}") from None
        leaks = [name for name in (row["leak_classes"] or "").split(";") if name]
        unknown = [name for name in leaks if name not in LEAK_CLASSES]
        if unknown:
            raise InvalidStudyError(path, f"line {line}: unknown leak class(es) {', '.join(unknown)}")
        columns["leak_classes"].append(leaks)
    if columns["frame"] != list(range(len(rows))):
        raise InvalidStudyError(path, 'the "frame" column must count 0, 1, 2, ... in order')
    times = columns["time_s"]
    back = _first_step_back(times)
    if back is not None:
        raise InvalidStudyError(
            path, f'line {back + 2}: "time_s" must increase; {times[back]:g} follows {times[back - 1]:g}'
        )
    for name in _CSV_NUMBERS:
        columns[name] = np.array(columns[name], dtype=float)
    return columns


def _check_times(truth_path: Path, truth: dict, csv_path: Path, times: list[float]) -> None:
    """Refuse a truth whose frame ``i`` is not at frames.csv's ``time_s`` of frame ``i``.

    Frames are matched by index (the counts are equal); the tolerance is that of
    :data:`_TIME_MATCH_SHARE` and the constants beside it. The first frame that differs is
    named, with both times and the tolerance.
    """
    intervals = np.diff(times)
    base = max(_TIME_MATCH_FLOOR_S, _TIME_MATCH_SHARE * float(np.median(intervals)) if intervals.size else 0.0)
    for i, (record, analysis_s) in enumerate(zip(truth["frames"], times)):
        truth_s = float(record["time_s"])
        tolerance = base + _TIME_SCALE_SLACK * abs(analysis_s)
        if not abs(truth_s - analysis_s) <= tolerance:
            raise InvalidStudyError(
                truth_path,
                f'frames[{i}]: "time_s" {truth_s:g} does not match {analysis_s:g}, the time of frame {i} in '
                f"{csv_path} (line {i + 2}), within {tolerance:.3g} s (frames are matched by index)",
            )


def _first_step_back(times: list[float]) -> int | None:
    """The first index whose time does not increase on the one before; None when all do."""
    return next((f for f in range(1, len(times)) if times[f] <= times[f - 1]), None)


def _finite_cell(row: dict, name: str) -> float:
    """Cell ``name`` of a frames.csv row as a finite number; ValueError naming the column otherwise."""
    try:
        value = float(row[name])
    except (TypeError, ValueError):  # (None: a row short of cells)
        value = math.nan
    if not math.isfinite(value):
        raise ArgumentError(f'"{name}" must be a finite number; got {row[name]!r}')
    return value
