"""The benchmarks' scoring of late stops, on hand-made frames, and their seed numbering
(benchmarks/accuracy.py, benchmarks/anatomy.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import accuracy  # noqa: E402
import anatomy  # noqa: E402
from accuracy import silent_frames_after_due_stop  # noqa: E402
from anatomy import unreliable_instead  # noqa: E402

# The truth stops at 1.0 s; frames come every 0.5 s, so a stop at 1.5 s is on time, and every
# frame after that one must stop or be unreliable.
TRUTH = {
    "events": [{"level": "warn", "time_s": 0.5}, {"level": "stop", "time_s": 1.0}],
    "frames": [{"frame": i, "time_s": 0.5 * i, "front_to_wall_mm": 6.0 - i, "leak_classes": []} for i in range(6)],
}


def rows(*alerts):
    return [{"time_s": str(0.5 * i), "alert": alert} for i, alert in enumerate(alerts)]


@pytest.mark.parametrize(
    "alerts, silent",
    [
        (("ok", "warn", "warn", "stop", "stop", "stop"), 0),  # stops when due
        (("ok", "warn", "warn", "unreliable", "unreliable", "stop"), 0),  # late, unreliable until it stops
        (("ok", "warn", "warn", "warn", "unreliable", "stop"), 0),  # late, unreliable after the frame allowed
        (("ok", "warn", "warn", "warn", "warn", "stop"), 1),  # late, the frame at 2.0 s says warn
        (("ok", "warn", "warn", "warn", "ok", "warn"), 2),  # never stops: the frames at 2.0 and 2.5 s
    ],
)
def test_silent_frames_are_ok_or_warn_between_the_due_stop_and_ours(alerts, silent):
    assert silent_frames_after_due_stop(rows(*alerts), TRUTH) == silent


def test_no_stop_in_the_truth_no_silent_frame():
    truth = dict(TRUTH, events=[{"level": "warn", "time_s": 0.5}])
    assert silent_frames_after_due_stop(rows("ok", "warn", "warn", "ok", "ok", "ok"), truth) == 0


def case(*, stop_s, silent, max_alert="stop", scenario="posterior_approach", warn_s=0.5):
    """A case as benchmarks/accuracy.py's run_case gives it, with what the criteria read."""
    difference_frames = None if stop_s is None else round((stop_s - 1.0) / 0.5)
    evaluation = {
        "front_to_wall_abs_error_mm_median": 0.2, "front_to_wall_abs_error_mm_p95": 0.8,
        "front_to_wall_unmeasured_frames": 0, "dice": 0.95, "dice_frame_mean": 0.93,
        "first_stop_s": {"analysis": stop_s, "truth": 1.0, "difference": None if stop_s is None else stop_s - 1.0,
                         "difference_frames": difference_frames},
        "first_warn_s": {"analysis": warn_s, "truth": 0.5},
        "leak_classes_missed": [], "leak_classes_spurious": [], "leak_class_frames": 0,
        "leak_class_frame_agreement": None, "alert_agreement": 0.9,
    }
    return {"scenario": scenario, "max_alert": max_alert, "evaluation": evaluation, "truth_frames": TRUTH["frames"],
            "silent_frames_after_due_stop": silent, "processing_fps": 10.0}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"stop_s": 2.5, "silent": 0}, True),  # three frames late, unreliable meanwhile
        ({"stop_s": None, "silent": 0}, True),  # never stops, unreliable throughout after the due time
        ({"stop_s": 2.5, "silent": 1}, False),  # late and once silent: wrong
        ({"stop_s": 0.5, "silent": 0}, False),  # early (the true front is 5 mm from the wall): wrong
        ({"stop_s": None, "silent": 0, "max_alert": "unreliable"}, True),  # no wall found: unreliable throughout
        ({"stop_s": None, "silent": 0, "scenario": "no_leak", "warn_s": None}, False),  # no miss at all
        ({"stop_s": None, "silent": 0, "scenario": "no_leak", "warn_s": 1.0}, False),  # a false warn: wrong
    ],
)
def test_unreliable_instead_only_where_the_one_miss_is_a_late_stop_that_was_never_silent(kwargs, expected):
    assert unreliable_instead(case(**kwargs)) is expected


@pytest.mark.parametrize("benchmark", [accuracy, anatomy])
@pytest.mark.parametrize("seeds", ["0", "11"])
def test_a_seed_count_whose_seeds_would_collide_is_refused_before_any_case(benchmark, seeds, tmp_path, capsys):
    # A case's seed keeps its own seed in its last digit: an 11th would be the next variant's first.
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["--json", str(tmp_path / "out.json"), "--seeds", seeds])
    assert exit_.value.code == 2 and "--seeds: must be 1 to 10" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
