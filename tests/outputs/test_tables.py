"""frames.csv, events.json, summary.json: columns, empty NaN, JSON nulls, alert summary."""

import csv
import dataclasses
import json
import math
import os

import numpy as np
import pytest

from vpimage.alerts import AlertLevel, events
from vpimage.outputs import (
    FRAME_COLUMNS,
    summarize_alerts,
    to_json,
    write_events_json,
    write_frames_csv,
    write_summary_json,
)

CONTRACT_COLUMNS = (
    "frame,time_s,cement_area_px,cement_area_mm2,front_to_wall_px,front_to_wall_mm,depth_fraction,"
    "front_speed_mm_s,time_to_wall_s,leak_area_mm2,leak_classes,alert,reason"
)


def test_frames_csv_columns_in_contract_order(tmp_path, results):
    path = tmp_path / "frames.csv"
    write_frames_csv(path, results)
    header = path.read_text().splitlines()[0]
    assert header.startswith(CONTRACT_COLUMNS)
    assert ",".join(FRAME_COLUMNS) == CONTRACT_COLUMNS


def test_frames_csv_values_nan_empty_and_quoting(tmp_path, results):
    path = tmp_path / "frames.csv"
    write_frames_csv(path, results)
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 5
    first = rows[0]
    assert first["frame"] == "0" and first["time_s"] == "0" and first["cement_area_px"] == "0"
    assert first["front_to_wall_mm"] == "" and first["depth_fraction"] == "" and first["time_to_wall_s"] == ""
    assert first["leak_classes"] == "" and first["alert"] == "ok" and first["reason"] == ""
    assert float(rows[2]["front_to_wall_mm"]) == pytest.approx(38 * 0.3)
    assert rows[2]["time_to_wall_s"] == "7.6" and rows[2]["front_speed_mm_s"] == "1.5"
    assert rows[3]["reason"] == 'front 4.0 mm from the wall, "near"' and rows[3]["alert"] == "warn"
    assert rows[4]["leak_classes"] == "posterior;venous" and rows[4]["leak_area_mm2"] == "2.5"


def test_frames_csv_writes_a_front_at_rest_as_0_not_minus_0(tmp_path, results):
    # The Theil-Sen slope of a front that does not move is -0.0 (the speed is minus the slope).
    path = tmp_path / "frames.csv"
    write_frames_csv(path, [dataclasses.replace(results[2], front_speed_mm_s=-0.0, time_to_wall_s=math.nan)])
    with open(path, newline="") as stream:
        (row,) = csv.DictReader(stream)
    assert row["front_speed_mm_s"] == "0"


def test_frames_csv_failure_leaves_no_file(tmp_path, results):
    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("engine died")

    with pytest.raises(RuntimeError):
        write_frames_csv(tmp_path / "frames.csv", [*results, Broken()])
    assert os.listdir(tmp_path) == []


def test_events_json_round_trip(tmp_path, results):
    path = tmp_path / "events.json"
    write_events_json(path, events(results))
    assert json.loads(path.read_text()) == [
        {"frame": 3, "time_s": 0.3, "level": "warn", "reason": 'front 4.0 mm from the wall, "near"'},
        {"frame": 4, "time_s": 0.4, "level": "stop", "reason": "leak: posterior; leak: venous"},
    ]


def test_summary_json_nan_is_null_and_types_plain(tmp_path, results):
    path = tmp_path / "summary.json"
    summary = {"mm_per_px": math.nan, "fps": np.float32(10.0), "frames": np.int64(5), "wall": (1, 2), "max": AlertLevel.STOP}
    write_summary_json(path, summary)
    assert json.loads(path.read_text()) == {"mm_per_px": None, "fps": 10.0, "frames": 5, "wall": [1, 2], "max": "stop"}


def test_to_json_nested():
    assert to_json({"a": [math.inf, {"b": np.array([1.5, np.nan])}]}) == {"a": [None, {"b": [1.5, None]}]}


def test_summarize_alerts(results):
    assert summarize_alerts(results) == {
        "frames": 5,
        "max_alert": "stop",
        "first_warn_s": 0.3,
        "first_stop_s": 0.4,
        "leak_classes": ["posterior", "venous"],
        "leak_classes_seen": ["posterior", "venous"],
        "final_cement_area_mm2": 36.0,
        "first_cement_s": 0.1,  # frame 1: frame 0 has none
    }


def test_summary_leak_classes_are_the_last_frames_and_the_early_ones_are_kept_apart(results):
    from dataclasses import replace

    # A stub first read as anterior, then the venous channel it grew into.
    grown = [*results[:3], replace(results[3], leak_classes=("anterior",)), replace(results[4], leak_classes=("venous",))]
    summary = summarize_alerts(grown)
    assert summary["leak_classes"] == ["venous"]
    assert summary["leak_classes_seen"] == ["venous", "anterior"]


def test_summarize_alerts_unreliable_study(results):
    from dataclasses import replace

    unreliable = [replace(r, alert=AlertLevel.UNRELIABLE, reason="no wall", leak_classes=()) for r in results]
    summary = summarize_alerts(unreliable)
    assert summary["max_alert"] == "unreliable" and summary["first_warn_s"] is None and summary["first_stop_s"] is None
    assert summarize_alerts([])["max_alert"] == "ok"
