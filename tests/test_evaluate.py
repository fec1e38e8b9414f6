"""vpimage.evaluate and ``vpimage evaluate``: scores of a hand-made analysis against a hand-made truth.

The pair below is small enough that every score is computed by hand in the comments.
"""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from vpimage.alerts import AlertLevel
from vpimage.cli import main
from vpimage.engine._result import FrameResult
from vpimage.errors import ArgumentError, InvalidStudyError
from vpimage.evaluate import EVALUATION_FILE, _check_times, dice, evaluate
from vpimage.outputs import MASKS_FILE, summarize_alerts, write_frames_csv, write_masks_npz, write_summary_json

FPS = 5.0
N = 5

# front_to_wall_mm per frame; None/NaN where there is no value.
TRUTH_FTW = [None, 8.0, 6.0, 4.0, 1.5]
ANALYSIS_FTW = [math.nan, 7.0, math.nan, 4.5, 3.5]
# depth_fraction per frame, likewise.
TRUTH_DEPTH = [None, 0.5, 0.6, 0.8, 0.9]
ANALYSIS_DEPTH = [math.nan, 0.4, 0.62, math.nan, 0.95]
# Truth held levels by frame: ok ok ok warn stop (events at 0.6 s and 0.8 s).
TRUTH_EVENTS = [{"level": "ok", "time_s": 0.0}, {"level": "warn", "time_s": 0.6}, {"level": "stop", "time_s": 0.8}]
ANALYSIS_ALERTS = ["ok", "ok", "warn", "warn", "unreliable"]
TRUTH_LEAKS = [[], [], [], ["venous"], ["posterior", "venous"]]
ANALYSIS_LEAKS = [(), (), (), ("venous",), ("venous", "anterior")]


def _masks():
    """Truth and analysis masks [5, 4, 4]: per-frame Dice -, 2/3, 1, 0, 0."""
    truth = np.zeros((N, 4, 4), bool)
    analysis = np.zeros((N, 4, 4), bool)
    truth[1, 0, :2] = True  # 2 px
    analysis[1, 0, 0] = True  # 1 px, inside: Dice 2*1/3
    truth[2, :2, :2] = analysis[2, :2, :2] = True  # 4 px each: Dice 1
    truth[3, :2, :2] = True  # 4 px, analysis empty: Dice 0
    analysis[4, 3, 3] = True  # 1 px, truth empty: Dice 0
    return truth, analysis


def _frame_result(f):
    return FrameResult(
        frame=f,
        time_s=f / FPS,
        cement_area_px=0,
        cement_area_mm2=0.0,
        front_to_wall_px=ANALYSIS_FTW[f] / 0.25,
        front_to_wall_mm=ANALYSIS_FTW[f],
        depth_fraction=ANALYSIS_DEPTH[f],
        front_speed_mm_s=math.nan,
        time_to_wall_s=math.nan,
        leak_area_mm2=0.0,
        leak_classes=ANALYSIS_LEAKS[f],
        alert=AlertLevel(ANALYSIS_ALERTS[f]),
        reason="",
    )


@pytest.fixture
def pair(tmp_path):
    """(result_dir, truth_path) of the hand-made analysis (a complete result: summary.json last) and truth."""
    truth_masks, analysis_masks = _masks()
    result_dir = tmp_path / "result"
    result_dir.mkdir()
    results = [_frame_result(f) for f in range(N)]
    write_frames_csv(result_dir / "frames.csv", results)
    write_masks_npz(result_dir / MASKS_FILE, analysis_masks, np.full((4, 4), np.nan))
    write_summary_json(result_dir / "summary.json", summarize_alerts(results))
    np.savez_compressed(tmp_path / "truth_masks.npz", masks=truth_masks)
    truth = {
        "scenario": "hand",
        "seed": 0,
        "fps": FPS,
        "mm_per_px": 0.25,
        "view": "lateral",
        "frames": [
            {
                "frame": f,
                "time_s": f / FPS,
                "cement_area_mm2": 0.0,
                "front_to_wall_mm": TRUTH_FTW[f],
                "depth_fraction": TRUTH_DEPTH[f],
                "leak_classes": TRUTH_LEAKS[f],
            }
            for f in range(N)
        ],
        "events": TRUTH_EVENTS,
        "masks_file": "truth_masks.npz",
    }
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps(truth))
    return result_dir, truth_path


def _edit_truth(truth_path, **changes):
    truth = json.loads(truth_path.read_text())
    truth.update(changes)
    truth_path.write_text(json.dumps(truth))


def test_dice_hand_values():
    truth, analysis = _masks()
    assert dice(truth[1], analysis[1]) == pytest.approx(2 / 3)
    assert dice(truth[2], analysis[2]) == 1.0
    assert dice(truth[3], analysis[3]) == 0.0
    assert dice(truth[0], analysis[0]) is None


def test_evaluate_hand_made_pair(pair):
    report = evaluate(*pair)
    assert report["frames"] == N
    # Pooled: |T| = 2+4+4 = 10, |A| = 1+4+1 = 6, |T&A| = 1+4 = 5 -> 10/16.
    assert report["dice"] == pytest.approx(0.625)
    # Frames 1-4 (frame 0 is empty on both sides): (2/3 + 1 + 0 + 0) / 4.
    assert report["dice_frame_mean"] == pytest.approx(5 / 12)
    # Truth has values on frames 1-4; the analysis misses frame 2; errors 1.0, 0.5, 2.0 mm.
    assert report["front_to_wall_frames"] == 4
    assert report["front_to_wall_unmeasured_frames"] == 1
    assert report["front_to_wall_abs_error_mm_median"] == pytest.approx(1.0)
    # Sorted 0.5, 1.0, 2.0: position 0.95 * 2 = 1.9 -> 1.0 + 0.9 * 1.0.
    assert report["front_to_wall_abs_error_mm_p95"] == pytest.approx(1.9)
    # Depth on frames 1, 2, 4 (the analysis misses 3): errors 0.1, 0.02, 0.05; sorted 0.02, 0.05,
    # 0.1: median 0.05, p95 at position 1.9 -> 0.05 + 0.9 * 0.05.
    assert report["depth_fraction_abs_error_median"] == pytest.approx(0.05)
    assert report["depth_fraction_abs_error_p95"] == pytest.approx(0.095)
    # Warn: analysis at 0.4 s, truth at 0.6 s; stop: truth 0.8 s, the analysis never.
    assert report["first_warn_s"]["analysis"] == pytest.approx(0.4)
    assert report["first_warn_s"]["truth"] == pytest.approx(0.6)
    assert report["first_warn_s"]["difference"] == pytest.approx(-0.2)
    assert report["first_warn_s"]["difference_frames"] == -1  # frame 2 against frame 3
    assert report["first_stop_s"] == {
        "analysis": None, "truth": pytest.approx(0.8), "difference": None, "difference_frames": None}
    # The study's classes are its last frame's: truth posterior + venous, analysis venous + anterior.
    assert report["leak_classes_found"] == ["venous"]
    assert report["leak_classes_missed"] == ["posterior"]
    assert report["leak_classes_spurious"] == ["anterior"]
    # Frames 3 and 4 have leaks; frame 3 agrees (venous), frame 4 does not.
    assert report["leak_class_frames"] == 2
    assert report["leak_class_frame_agreement"] == pytest.approx(0.5)
    # Agree on frames 0, 1 (ok) and 3 (warn); not 2 (warn vs ok) nor 4 (unreliable vs stop).
    assert report["alert_agreement"] == pytest.approx(3 / 5)


def test_per_frame_records(pair):
    per_frame = evaluate(*pair)["per_frame"]
    assert [r["frame"] for r in per_frame] == list(range(N))
    assert [r["time_s"] for r in per_frame] == pytest.approx([f / FPS for f in range(N)])
    assert [r["alert"] for r in per_frame] == ANALYSIS_ALERTS
    assert [r["truth_alert"] for r in per_frame] == ["ok", "ok", "ok", "warn", "stop"]
    assert [r["alert_agrees"] for r in per_frame] == [True, True, False, True, False]
    assert [r["dice"] for r in per_frame] == [None, pytest.approx(2 / 3), 1.0, 0.0, 0.0]
    # Signed, analysis minus truth: 7 - 8, unmeasured, 4.5 - 4, 3.5 - 1.5.
    assert [r["front_to_wall_error_mm"] for r in per_frame] == [None, -1.0, None, 0.5, 2.0]
    assert [r["depth_fraction_error"] for r in per_frame] == [None, pytest.approx(-0.1), pytest.approx(0.02), None,
                                                              pytest.approx(0.05)]


def test_dice_on_frames_with_enough_cement(pair):
    result_dir, truth_path = pair
    truth = json.loads(truth_path.read_text())
    for record, area in zip(truth["frames"], [0.0, 10.0, 25.0, 30.0, 0.0]):
        record["cement_area_mm2"] = area
    truth_path.write_text(json.dumps(truth))
    report = evaluate(result_dir, truth_path)
    # Frames 2 (Dice 1) and 3 (Dice 0) have >= 20 mm^2 of true cement.
    assert report["dice_large_frames"] == 2 and report["dice_min_large_frames"] == 0.0
    _edit_truth(truth_path, frames=[dict(r, cement_area_mm2=5.0) for r in truth["frames"]])
    report = evaluate(result_dir, truth_path)
    assert report["dice_large_frames"] == 0 and report["dice_min_large_frames"] is None


def test_truth_level_between_events_is_the_last_event_before(pair):
    result_dir, truth_path = pair
    # A stop entered at 0.3 s holds at the frames at 0.4 s and 0.6 s too.
    _edit_truth(truth_path, events=[{"level": "ok", "time_s": 0.0}, {"level": "stop", "time_s": 0.3}])
    report = evaluate(result_dir, truth_path)
    assert report["first_stop_s"]["truth"] == pytest.approx(0.4)
    assert report["first_warn_s"]["difference"] == pytest.approx(0.0)
    assert report["alert_agreement"] == pytest.approx(2 / 5)  # frames 0 and 1 only


def test_without_truth_masks_dice_is_null(pair):
    result_dir, truth_path = pair
    _edit_truth(truth_path, masks_file=None)
    report = evaluate(result_dir, truth_path)
    assert report["dice"] is None and report["dice_frame_mean"] is None
    assert report["dice_min_large_frames"] is None and report["dice_large_frames"] == 0
    assert all(r["dice"] is None for r in report["per_frame"])
    assert report["front_to_wall_abs_error_mm_median"] == pytest.approx(1.0)


def test_without_analysis_masks_dice_is_null(pair):
    result_dir, truth_path = pair
    (result_dir / MASKS_FILE).unlink()
    assert evaluate(result_dir, truth_path)["dice"] is None


def test_no_truth_distances_gives_null_errors(pair):
    """An AP truth (front_to_wall_mm null everywhere) has no distance errors to report."""
    result_dir, truth_path = pair
    truth = json.loads(truth_path.read_text())
    for record in truth["frames"]:
        record["front_to_wall_mm"] = record["depth_fraction"] = None
    truth_path.write_text(json.dumps(truth))
    report = evaluate(result_dir, truth_path)
    assert report["front_to_wall_frames"] == 0
    assert report["front_to_wall_abs_error_mm_median"] is None
    assert report["front_to_wall_abs_error_mm_p95"] is None
    assert report["depth_fraction_abs_error_median"] is None and report["depth_fraction_abs_error_p95"] is None


def test_a_run_of_no_frame_scores_nothing(pair):
    # (Its masks, shaped [0, 4, 4], were counted through a reshape that cannot take 0 frames:
    # a ValueError's traceback, exit 1.)
    result_dir, truth_path = pair
    write_frames_csv(result_dir / "frames.csv", [])
    write_masks_npz(result_dir / MASKS_FILE, np.zeros((0, 4, 4), bool), np.full((4, 4), np.nan))
    np.savez_compressed(truth_path.parent / "truth_masks.npz", masks=np.zeros((0, 4, 4), bool))
    _edit_truth(truth_path, frames=[], events=[])
    report = evaluate(result_dir, truth_path)
    assert (report["frames"], report["dice"], report["dice_large_frames"]) == (0, None, 0)


def test_frame_count_mismatch_names_frames_csv(pair):
    result_dir, truth_path = pair
    truth = json.loads(truth_path.read_text())
    truth["frames"] = truth["frames"][:4]
    truth_path.write_text(json.dumps(truth))
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(result_dir / "frames.csv")
    assert "5 frames" in error.value.reason and "has 4" in error.value.reason


def test_mask_shape_mismatch_names_masks_npz(pair):
    result_dir, truth_path = pair
    write_masks_npz(result_dir / MASKS_FILE, np.zeros((N, 4, 5), bool), np.full((4, 5), np.nan))
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(result_dir / MASKS_FILE)


def test_truth_masks_of_another_frame_count_is_an_error(pair):
    result_dir, truth_path = pair
    np.savez_compressed(truth_path.parent / "truth_masks.npz", masks=np.zeros((N + 1, 4, 4), bool))
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(truth_path.parent / "truth_masks.npz")


def _save_npy(path):
    """``path`` overwritten by a bare .npy (``np.save``), not an npz archive."""
    with open(path, "wb") as stream:
        np.save(stream, np.zeros((N, 4, 4), bool))


@pytest.mark.parametrize("side", ["analysis", "truth"])
@pytest.mark.parametrize(
    "write, expected",
    [
        (lambda path: path.write_bytes(b""), "cannot read the {what}: not an npz archive"),
        (_save_npy, "cannot read the {what}: not an npz archive"),
        (lambda path: np.savez(path, other=np.zeros((N, 4, 4), bool)), "has no array '{key}'"),
    ],
)
def test_masks_file_that_is_no_npz_or_lacks_its_array_is_named(pair, side, write, expected):
    result_dir, truth_path = pair
    path, what, key = {
        "analysis": (result_dir / MASKS_FILE, "masks", "cement"),
        "truth": (truth_path.parent / "truth_masks.npz", "truth masks", "masks"),
    }[side]
    write(path)
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(path)
    assert error.value.reason == expected.format(what=what, key=key)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda path: path.unlink(), "cannot read: No such file or directory"),
        (lambda path: path.write_text('{"frames": 5, "max_al'), "not valid JSON"),
        (lambda path: path.write_text("[]"), "not a JSON object"),
    ],
)
def test_result_without_a_readable_summary_is_incomplete(pair, edit, expected):
    """summary.json is written last: a folder without it (or with a broken one) holds no complete result."""
    result_dir, truth_path = pair
    edit(result_dir / "summary.json")
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(result_dir / "summary.json")
    assert error.value.reason.startswith("an incomplete result (analyze writes summary.json last): ")
    assert expected in error.value.reason


def _replace(truth_path, old, new):
    """Replace the first ``old`` of the truth file's text by ``new`` (for what json.dumps cannot write)."""
    text = truth_path.read_text()
    assert old in text
    truth_path.write_text(text.replace(old, new, 1))


# A JSON integer too large for a float.
HUGE = "1" + "0" * 400


def _edit_frame(truth_path, index, **changes):
    """Change frame ``index`` of the truth file (``changes`` a value of None deletes the key)."""
    truth = json.loads(truth_path.read_text())
    truth["frames"][index].update(changes)
    truth_path.write_text(json.dumps(truth))


@pytest.mark.parametrize(
    "edit, expected, named",
    [
        (lambda t: t.write_text("{not json"), "not valid JSON", "truth"),
        (lambda t: t.write_text("[]"), '"frames" and "events"', "truth"),
        (lambda t: _edit_truth(t, frames={"0": {}}), '"frames" and "events"', "truth"),
        (lambda t: _edit_truth(t, events=[{"level": "panic", "time_s": 0.0}]), "events[0]", "truth"),
        (lambda t: _edit_truth(t, events=[{"level": ["stop"], "time_s": 0.0}]), "events[0]", "truth"),
        (lambda t: _edit_truth(t, events=[{"level": {"stop": 1}, "time_s": 0.0}]), "events[0]", "truth"),
        (lambda t: _edit_truth(t, masks_file="absent.npz"), "cannot read the truth masks", "masks"),
        (lambda t: _edit_truth(t, frames=[{"frame": 0, "time_s": 0.0, "front_to_wall_mm": None,
                                           "depth_fraction": "deep", "cement_area_mm2": 0.0, "leak_classes": []}] * N),
         '"depth_fraction"', "truth"),
        (lambda t: _edit_truth(t, frames=[{"frame": 0, "time_s": 0.0, "depth_fraction": None,
                                           "cement_area_mm2": 0.0, "leak_classes": []}] * N), "has no front_to_wall_mm",
         "truth"),
        (lambda t: _edit_truth(t, frames=[{"frame": 0, "time_s": 0.0, "front_to_wall_mm": None, "depth_fraction": None,
                                           "cement_area_mm2": "abc", "leak_classes": []}] * N), '"cement_area_mm2"',
         "truth"),
        # frames[i] not an object: the first such frame is named by its index.
        (lambda t: _edit_truth(t, frames=[*json.loads(t.read_text())["frames"][:2], [0, 0.4], 7, None]),
         "frames[2] is not an object", "truth"),
        # "time_s" not a number (a string, a bool, missing, not finite).
        (lambda t: _edit_frame(t, 3, time_s="0.6"), "frames[3]: \"time_s\" must be a number; got '0.6'", "truth"),
        (lambda t: _edit_frame(t, 1, time_s=True), "frames[1]: \"time_s\" must be a number; got True", "truth"),
        (lambda t: _edit_frame(t, 0, time_s=None), "frames[0]: \"time_s\" must be a number; got None", "truth"),
        (lambda t: t.write_text(t.read_text().replace('"time_s": 0.4,', '"time_s": NaN,', 1)),
         "frames[2]: \"time_s\" must be a number; got nan", "truth"),
        # Frame times that go back or stand still (the truth's frames are in time order).
        (lambda t: _edit_frame(t, 3, time_s=0.1), 'frames[3]: "time_s" must increase; 0.1 follows 0.4', "truth"),
        (lambda t: _edit_frame(t, 1, time_s=0.0), 'frames[1]: "time_s" must increase; 0 follows 0', "truth"),
        # Integers beyond float range are no numbers either; too many digits or too deep a nesting is no JSON.
        (lambda t: _replace(t, '"time_s": 0.0,', f'"time_s": {HUGE},'), 'frames[0]: "time_s" must be a number;',
         "truth"),
        (lambda t: _replace(t, '"front_to_wall_mm": 8.0', f'"front_to_wall_mm": {HUGE}'),
         'frames[1]: "front_to_wall_mm" must be a number or null;', "truth"),
        (lambda t: _replace(t, '"cement_area_mm2": 0.0', f'"cement_area_mm2": {HUGE}'),
         'frames[0]: "cement_area_mm2" must be a number >= 0;', "truth"),
        (lambda t: _replace(t, '"level": "warn", "time_s": 0.6', f'"level": "warn", "time_s": {HUGE}'), "events[1]",
         "truth"),
        (lambda t: _replace(t, '"time_s": 0.0,', f'"time_s": {"1" * 5000},'), "not valid JSON", "truth"),
        (lambda t: t.write_text("[" * 100000 + "]" * 100000), "not valid JSON", "truth"),
        # "leak_classes" not a list, or holding a class that is not one of CONTRACT.md's.
        (lambda t: _edit_frame(t, 4, leak_classes="venous"),
         "frames[4]: \"leak_classes\" must be a list of posterior, venous, disc_superior, disc_inferior, anterior; "
         "got 'venous'", "truth"),
        (lambda t: _edit_frame(t, 3, leak_classes=["venous", "spinal"]),
         "frames[3]: \"leak_classes\" must be a list of", "truth"),
        (lambda t: _edit_frame(t, 2, leak_classes=None), "frames[2]: \"leak_classes\" must be a list", "truth"),
        # "masks_file" a name or null, nothing else.
        (lambda t: _edit_truth(t, masks_file=5), "\"masks_file\" must be a file name or null; got 5", "truth"),
        (lambda t: _edit_truth(t, masks_file=["truth_masks.npz"]), "\"masks_file\" must be a file name or null",
         "truth"),
    ],
)
def test_bad_truth_is_invalid_and_named(pair, edit, expected, named):
    result_dir, truth_path = pair
    edit(truth_path)
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert expected in error.value.reason
    where = {"truth": truth_path, "masks": truth_path.parent / "absent.npz"}[named]
    assert error.value.path == str(where)


def _retime_truth(truth_path, retime):
    """Set every truth frame's "time_s" to ``retime(frame, time_s)`` (the events are left as they are)."""
    truth = json.loads(truth_path.read_text())
    for record in truth["frames"]:
        record["time_s"] = retime(record["frame"], record["time_s"])
    truth_path.write_text(json.dumps(truth))


# Truth frame times that are not frames.csv's (0, 0.2, 0.4, 0.6, 0.8 s; frames are matched by
# index): stretched, offset, or one frame moved by a full interval (still increasing). Each is
# named by its first differing frame, both times and the tolerance (a tenth of the 0.2 s interval).
WRONG_TRUTH_TIMES = [
    pytest.param(lambda f, t: 2 * t, 'frames[1]: "time_s" 0.4 does not match 0.2, the time of frame 1', id="times_x2"),
    pytest.param(lambda f, t: t + 100, 'frames[0]: "time_s" 100 does not match 0, the time of frame 0',
                 id="plus_100_s"),
    pytest.param(lambda f, t: t + 0.2 if f == N - 1 else t,
                 'frames[4]: "time_s" 1 does not match 0.8, the time of frame 4', id="last_frame_one_interval_late"),
    # Just over the tolerance (0.02 s + 0.2 % of the time: 0.0208 s at 0.4 s).
    pytest.param(lambda f, t: t + 0.0212 if f == 2 else t,
                 'frames[2]: "time_s" 0.4212 does not match 0.4, the time of frame 2', id="just_over_tolerance"),
]


@pytest.mark.parametrize("retime, expected", WRONG_TRUTH_TIMES)
def test_truth_times_that_are_not_frames_csv_times_are_named(pair, retime, expected):
    result_dir, truth_path = pair
    _retime_truth(truth_path, retime)
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(truth_path)
    assert error.value.reason.startswith(expected)
    csv_path = result_dir / "frames.csv"
    assert f" in {csv_path} (line " in error.value.reason
    assert re.search(r"within 0\.02\d* s \(frames are matched by index\)$", error.value.reason)


@pytest.mark.parametrize("retime, expected", WRONG_TRUTH_TIMES)
def test_cli_truth_times_that_are_not_frames_csv_times_exit_3_with_one_line(pair, capsys, retime, expected):
    result_dir, truth_path = pair
    _retime_truth(truth_path, retime)
    assert main(["evaluate", str(result_dir), str(truth_path)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"{truth_path}: {expected}" in captured.err
    assert re.search(r"within 0\.02\d* s", captured.err)
    assert not (result_dir / EVALUATION_FILE).exists()


def test_a_truth_at_a_nominal_rate_a_little_off_the_headers_is_matched():
    # 300 frames at NTSC's 29.97 fps in frames.csv, a truth written at the nominal 30 fps:
    # 10 ms apart by the last frame, a third of an interval, yet the same frames. It was
    # refused from frame 101 on. Twice the times still fail at once.
    times = list(np.arange(300) / 29.97)
    truth = {"frames": [{"time_s": i / 30} for i in range(300)]}
    _check_times(Path("truth.json"), truth, Path("frames.csv"), times)
    doubled = {"frames": [{"time_s": 2 * t} for t in times]}
    with pytest.raises(InvalidStudyError, match=r"frames\[1\]: \"time_s\" 0.0667334 does not match 0.0333667"):
        _check_times(Path("truth.json"), doubled, Path("frames.csv"), times)


def test_truth_times_rounded_to_1_ms_still_score(pair):
    """Jittered frame times, written to frames.csv at 6 significant digits and to the truth
    rounded to 1 ms (0.5 ms apart at most): the same frames, the hand-made scores."""
    result_dir, truth_path = pair
    jittered = ["0", "0.213457", "0.386541", "0.612345", "0.807891"]
    _edit_rows(result_dir / "frames.csv", lambda rows: [row.update(time_s=t) for row, t in zip(rows, jittered)])
    _retime_truth(truth_path, lambda f, t: round(float(jittered[f]), 3))
    # The truth's events at its (rounded) frame times: ok at 0, warn at frame 3, stop at frame 4.
    _edit_truth(truth_path, events=[{"level": "ok", "time_s": 0.0}, {"level": "warn", "time_s": 0.612},
                                    {"level": "stop", "time_s": 0.808}])
    report = evaluate(result_dir, truth_path)
    assert report["frames"] == N
    assert report["dice"] == pytest.approx(0.625)
    assert report["front_to_wall_abs_error_mm_median"] == pytest.approx(1.0)
    assert report["alert_agreement"] == pytest.approx(3 / 5)
    assert report["first_warn_s"] == {"analysis": pytest.approx(0.386541), "truth": pytest.approx(0.612),
                                      "difference": pytest.approx(0.386541 - 0.612), "difference_frames": -1}
    assert [r["time_s"] for r in report["per_frame"]] == pytest.approx([float(t) for t in jittered])


def _edit_rows(csv_path, edit):
    """Rewrite frames.csv with ``edit(rows)`` applied to its rows (a list of dicts, header kept)."""
    with open(csv_path, newline="") as stream:
        reader = csv.DictReader(stream)
        header, rows = reader.fieldnames, list(reader)
    edit(rows)
    with open(csv_path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def _set(index, **changes):
    return lambda rows: rows[index].update(changes)


def _frames(*numbers):
    def edit(rows):
        for row, number in zip(rows, numbers):
            row["frame"] = str(number)
    return edit


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda path: path.write_text("frame,time_s\n0,0.0\n"),
         "missing column(s) front_to_wall_mm, depth_fraction, leak_classes, alert"),
        # The "frame" column counts 0, 1, 2, ...: not from 1, not out of order, no gap, no repeat.
        (lambda path: _edit_rows(path, _frames(1, 2, 3, 4, 5)), 'the "frame" column must count 0, 1, 2, ... in order'),
        (lambda path: _edit_rows(path, _frames(0, 1, 3, 2, 4)), 'the "frame" column must count 0, 1, 2, ... in order'),
        (lambda path: _edit_rows(path, _frames(0, 1, 2, 3, 5)), 'the "frame" column must count 0, 1, 2, ... in order'),
        (lambda path: _edit_rows(path, _frames(0, 1, 1, 3, 4)), 'the "frame" column must count 0, 1, 2, ... in order'),
        # Leak classes are CONTRACT.md's; the line is the file's (the header is line 1).
        (lambda path: _edit_rows(path, _set(3, leak_classes="venous;spinal")), "line 5: unknown leak class(es) spinal"),
        (lambda path: _edit_rows(path, _set(0, leak_classes="Venous")), "line 2: unknown leak class(es) Venous"),
        (lambda path: _edit_rows(path, _set(2, frame="two")), "line 4: invalid literal for int()"),
        (lambda path: _edit_rows(path, _set(4, alert="panic")), "line 6: 'panic' is not a valid AlertLevel"),
        # Times finite and increasing; a distance or depth a finite number or empty (unmeasured).
        (lambda path: _edit_rows(path, _set(2, time_s="nan")), "line 4: \"time_s\" must be a finite number; got 'nan'"),
        (lambda path: _edit_rows(path, _set(0, time_s="inf")), "line 2: \"time_s\" must be a finite number; got 'inf'"),
        (lambda path: _edit_rows(path, _set(1, time_s="")), "line 3: \"time_s\" must be a finite number; got ''"),
        (lambda path: _edit_rows(path, _set(3, time_s="0.1")), 'line 5: "time_s" must increase; 0.1 follows 0.4'),
        (lambda path: _edit_rows(path, _set(4, time_s="0.6")), 'line 6: "time_s" must increase; 0.6 follows 0.6'),
        (lambda path: _edit_rows(path, _set(1, front_to_wall_mm="inf")),
         "line 3: \"front_to_wall_mm\" must be a finite number; got 'inf'"),
        (lambda path: _edit_rows(path, _set(3, front_to_wall_mm="1e400")),
         "line 5: \"front_to_wall_mm\" must be a finite number; got '1e400'"),
        (lambda path: _edit_rows(path, _set(2, front_to_wall_mm="near")),
         "line 4: \"front_to_wall_mm\" must be a finite number; got 'near'"),
        (lambda path: _edit_rows(path, _set(4, depth_fraction="nan")),
         "line 6: \"depth_fraction\" must be a finite number; got 'nan'"),
    ],
)
def test_bad_frames_csv_is_invalid_and_named(pair, edit, expected):
    result_dir, truth_path = pair
    csv_path = result_dir / "frames.csv"
    edit(csv_path)
    with pytest.raises(InvalidStudyError) as error:
        evaluate(result_dir, truth_path)
    assert error.value.path == str(csv_path)
    assert expected in error.value.reason


def test_cli_prints_and_writes_the_report(pair, capsys):
    result_dir, truth_path = pair
    assert main(["evaluate", str(result_dir), str(truth_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((result_dir / EVALUATION_FILE).read_text())
    assert len(written.pop("per_frame")) == N
    assert printed == written
    assert written["dice"] == pytest.approx(0.625)
    assert written["first_stop_s"]["difference"] is None


@pytest.mark.parametrize("broken", ["missing_truth", "bad_json", "missing_result_dir", "missing_summary", "npy_masks"])
def test_cli_bad_input_exits_3_with_one_line(pair, capsys, broken):
    result_dir, truth_path = pair
    if broken == "missing_truth":
        truth_path.unlink()
        named = truth_path
    elif broken == "bad_json":
        truth_path.write_text("{")
        named = truth_path
    elif broken == "missing_result_dir":
        result_dir = result_dir.parent / "nowhere"
        named = result_dir
    elif broken == "missing_summary":
        named = result_dir / "summary.json"
        named.unlink()
    else:
        named = result_dir / MASKS_FILE
        _save_npy(named)
    assert main(["evaluate", str(result_dir), str(truth_path)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(named) in err
    assert not (result_dir / EVALUATION_FILE).exists()


def test_paths_that_are_no_paths_are_refused(pair):
    result_dir, truth_path = pair
    for args, name in (((None, truth_path), "result_dir"), ((result_dir, 3), "truth_path")):
        with pytest.raises(ArgumentError, match=f"`{name}` must be a str or PathLike"):
            evaluate(*args)
