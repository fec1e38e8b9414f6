"""Accuracy of the analysis on the phantom, against its ground truth (issue 4, "Show").

A case set is generated here: every scenario at five nuisance variants (tilt up to 25
degrees, breathing always, a sudden shift, MONOCHROME1, circular and rectangular fields,
the lowest dose, jittered frame times), each at its own seed. The engine gets what
``vpimage analyze`` gives it for the DICOM of the run (frames oriented like MONOCHROME2,
the field, mm/px) and the truth's frame-0 corners as WALL.json. DICOM ingestion itself is
proven by the io tests; tests/test_cli_analyze.py runs the whole command end to end.

The thresholds are the issue's. Where the analysis does not meet one yet, the test says
so with a strict xfail that names the measured value (benchmarks/accuracy.py writes the
full table); a fix that meets it turns the xfail into a failure, so the marker goes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.alerts import AlertLevel
from vpimage.anatomy import needle_entry_side, study_needle
from vpimage.config import RunConfig
from vpimage.engine import Engine
from vpimage.measures import Corners, FrontSpeedEstimator
from vpimage.synth._phantom import SynthOptions, simulate

VARIANTS = (
    {},
    {"dose": "low", "tilt_deg": 25.0},
    {"photometric": "MONOCHROME1", "field": "rectangle", "sudden_shift": True, "tilt_deg": 10.0},
    {"dose": "low", "sudden_shift": True, "photometric": "MONOCHROME1"},
    {"dose": "high", "tilt_deg": 20.0, "jitter": True},
)
SCENARIOS = ("no_leak", "posterior_approach", "posterior_breach", "venous_leak", "disc_leak", "anterior_leak")
CASES = [(s, 10 + 7 * i + j, v) for i, s in enumerate(SCENARIOS) for j, v in enumerate(VARIANTS)]
STOPPING = ("posterior_approach", "posterior_breach", "venous_leak", "disc_leak", "anterior_leak")


class Batch:
    def __init__(self, frames, time_s, index):
        self.frames, self.time_s, self.index = frames, time_s, index


def as_ingested(run) -> np.ndarray:
    """Frames as vpimage.io gives them: float32, MONOCHROME1 inverted."""
    frames = run.frames.astype(np.float32)
    if run.photometric == "MONOCHROME1":
        frames = (2**run.bits_stored - 1) - frames
    return frames


def analyse(run, corners: Corners, frames=None, *, batch: int = 16, fov_mask=None):
    return analysed_engine(run, corners, frames, batch=batch, fov_mask=fov_mask)[0]


def analysed_engine(run, corners: Corners, frames=None, *, batch: int = 16, fov_mask=None):
    """:func:`analyse`'s frames and the engine that gave them (its state after the last frame);
    the field is the run's unless ``fov_mask`` is given."""
    frames = as_ingested(run) if frames is None else frames
    engine = Engine(
        RunConfig.defaults(),
        rows=frames.shape[1],
        columns=frames.shape[2],
        mm_per_px=run.mm_per_px,
        fov_mask=run.field.mask(*frames.shape[1:]) if fov_mask is None else fov_mask,
        corners=corners,
        white_level=2**run.bits_stored - 1,
    )
    out = []
    for start in range(0, len(frames), batch):
        stop = min(start + batch, len(frames))
        out += engine.process(Batch(frames[start:stop], run.time_s[start:stop], np.arange(start, stop)))
    return out, engine


@lru_cache(maxsize=None)
def unchanged_study(scenario: str, seed: int, options: SynthOptions = SynthOptions()):
    """A phantom run (default ``options``), its frames as ingested, and the engine's frames on
    them: the truth a test that changes the frames compares with."""
    sim = simulate(scenario, seed=seed, options=options)
    frames = as_ingested(sim.run)
    return sim, frames, analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), frames)


def analysed_phantom(scenario: str, seed: int, **options) -> dict:
    """A phantom run (``SynthOptions(**options)``) analysed with the truth's frame-0 corners: the
    simulation ``sim``, its ``truth``, the engine's frames ``out`` and ``results``, and the
    cement ``dice`` on each frame with >= 20 mm2 of true cement."""
    sim = simulate(scenario, seed=seed, options=SynthOptions(**options))
    out = analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]))
    dice = [
        2 * (frame.cement_mask & mask).sum() / (frame.cement_mask.sum() + mask.sum())
        for frame, truth, mask in zip(out, sim.truth["frames"], sim.cement_masks)
        if truth["cement_area_mm2"] >= 20.0
    ]
    return {"sim": sim, "truth": sim.truth, "out": out, "results": [f.result for f in out], "dice": np.array(dice)}


def needle_enters(run, corners: Corners) -> str | None:
    """The side of the body the needle enters through, as ``vpimage analyze`` checks WALL.json."""
    frames = as_ingested(run)
    study = SimpleNamespace(
        geometry=SimpleNamespace(mm_per_px=run.mm_per_px, fov_mask=run.field.mask(*frames.shape[1:])),
        timing=SimpleNamespace(time_s=run.time_s),
        iter_frames=lambda: iter(frames),
        white_level=2**run.bits_stored - 1,
    )
    needle = study_needle(study, display_log_range=RunConfig.defaults().segmentation.display_log_range)
    return needle and needle_entry_side(corners, needle)


def first_time(items, predicate):
    return next((t for t, item in items if predicate(item)), None)


@pytest.fixture(scope="module")
def measured():
    """Per case: scenario, truth events and frames, our results, the Dice per frame, the
    pixels we call cement on the needle's shadow more than 3 px from true cement, per frame,
    and the side of the truth's body the needle enters through."""
    cases = []
    for scenario, seed, variant in CASES:
        sim = simulate(scenario, seed=seed, options=SynthOptions(**variant))
        corners = Corners.from_dict(sim.truth["vertebral_body"])
        out = analyse(sim.run, corners)
        dice, on_steel = [], []
        for frame, truth, mask, steel in zip(out, sim.truth["frames"], sim.cement_masks, sim.needle_masks):
            ours = frame.cement_mask
            if truth["cement_area_mm2"] >= 20.0:
                dice.append(2 * (ours & mask).sum() / (ours.sum() + mask.sum()))
            away = ndi.distance_transform_edt(~mask) > 3.0  # more than 3 px from true cement
            on_steel.append(int((ours & steel & away).sum()))
        cases.append(
            {
                "name": f"{scenario}/{seed}/{variant}",
                "scenario": scenario,
                "truth": sim.truth,
                "results": [f.result for f in out],
                "dice": dice,
                "false_cement_on_steel_px": on_steel,
                "needle_enters": needle_enters(sim.run, corners),
            }
        )
    return cases


def front_errors(cases):
    """|front_to_wall_mm error| over frames with cement in the body (the truth has a front)."""
    errors = []
    for case in cases:
        for truth, ours in zip(case["truth"]["frames"], case["results"]):
            if truth["front_to_wall_mm"] is not None:
                # A frame without a front counts as a miss of the whole body depth; an
                # unreliable frame is scored on the front it reports, like any other.
                ok = math.isfinite(ours.front_to_wall_mm)
                errors.append(abs(ours.front_to_wall_mm - truth["front_to_wall_mm"]) if ok else math.inf)
    return np.array(errors)


def test_front_to_wall_median_error_is_within_half_a_millimetre(measured):
    errors = front_errors(measured)
    assert errors.size > 500
    assert np.median(errors) <= 0.5


def test_front_to_wall_p95_error_is_within_one_and_a_half_millimetres(measured):
    assert np.percentile(front_errors(measured), 95) <= 1.5


def test_cement_dice_is_high_on_most_frames_with_enough_cement(measured):
    dice = np.concatenate([case["dice"] for case in measured])
    assert dice.size > 500
    assert np.median(dice) >= 0.92


@pytest.mark.xfail(
    strict=True,
    reason="target Dice >= 0.90 on every frame >= 20 mm2 not met: 89 % of frames are, 5th percentile 0.86; the "
    "misses are the frames of small blobs (2 % of frames under 50 mm2 reach 0.90, 99.5 % over 200 mm2 do), "
    "where a one-pixel rim is a fifth of the area or more",
)
def test_cement_dice_is_at_least_0_90_on_every_frame_with_20_mm2(measured):
    dice = np.concatenate([case["dice"] for case in measured])
    assert dice.min() >= 0.90


def test_depth_fraction_follows_the_truths(measured):
    # The warn's second rule (the posterior quarter). Measured at 1,650 frames: median error
    # 0.005 of the body's depth, p95 0.029; on 99.5 % of frames both sides agree on >= 0.75.
    errors, agree = [], []
    for case in measured:
        for truth, ours in zip(case["truth"]["frames"], case["results"]):
            if truth["depth_fraction"] is not None:
                assert math.isfinite(ours.depth_fraction), (case["name"], truth["frame"])
                errors.append(abs(ours.depth_fraction - truth["depth_fraction"]))
                agree.append((ours.depth_fraction >= 0.75) == (truth["depth_fraction"] >= 0.75))
    assert len(errors) > 1000
    assert np.median(errors) <= 0.01 and np.percentile(errors, 95) <= 0.05
    assert np.mean(agree) >= 0.98


def test_front_speed_follows_the_truths(measured):
    # The truth's speed is the same estimator (Theil-Sen over the same window) run on the
    # truth's fronts: what a perfect front would give. Measured at 1,620 frames: median
    # error 0.22 mm/s, p95 1.34 (true speeds: median 0.42 mm/s, p95 4.4); where the truth
    # approaches at 1 mm/s or more, 96 % of frames say it approaches.
    errors, fast = [], []
    for case in measured:
        truth_speed = FrontSpeedEstimator(window_s=RunConfig.defaults().speed.window_s)
        for truth, ours in zip(case["truth"]["frames"], case["results"]):
            front = truth["front_to_wall_mm"]
            expected = truth_speed.update(truth["time_s"], math.nan if front is None else front)
            if math.isfinite(expected):
                assert math.isfinite(ours.front_speed_mm_s), (case["name"], truth["frame"])
                errors.append(abs(ours.front_speed_mm_s - expected))
                if expected >= 1.0:
                    fast.append(ours.front_speed_mm_s > 0)
    assert len(errors) > 1000 and len(fast) > 300
    assert np.median(errors) <= 0.3 and np.percentile(errors, 95) <= 1.5
    assert np.mean(fast) >= 0.9


def test_noise_in_the_needle_shadow_does_not_grow_cement_along_it(measured):
    # The steel lets few quanta through: its shadow is far noisier than bone. Noise there
    # must not pass for cement and creep along the shaft, away from the true cement.
    worst = {case["name"]: max(case["false_cement_on_steel_px"]) for case in measured}
    assert max(worst.values()) <= 2, sorted(worst.items(), key=lambda item: -item[1])[:3]


def test_the_needle_enters_through_the_posterior_wall_the_truth_draws(measured):
    """The check on WALL.json (needle_enters_anterior) holds its peace on every case: the
    phantom's needle is transpedicular, and the truth's corners are drawn right."""
    assert [case["needle_enters"] for case in measured] == ["posterior"] * len(CASES)


def test_no_warn_or_stop_without_a_leak_or_an_approach(measured):
    for case in (c for c in measured if c["scenario"] == "no_leak"):
        levels = {r.alert for r in case["results"]}
        assert not levels & {AlertLevel.WARN, AlertLevel.STOP}, case["name"]


def leak_class_sets(case):
    """Leak classes seen in any frame: by the truth, by us."""
    truth = {name for f in case["truth"]["frames"] for name in f["leak_classes"]}
    return truth, {name for r in case["results"] for name in r.leak_classes}


def test_no_leak_class_where_nothing_leaks(measured):
    for case in (c for c in measured if c["scenario"] in ("no_leak", "posterior_approach")):
        assert leak_class_sets(case) == (set(), set()), case["name"]


def test_leak_classes_are_right_in_nine_of_ten_leak_cases(measured):
    # The study's classes are its last frame's (summary.json's `leak_classes`): a leak is
    # classed by its shape, and a vein and an anterior leak both leave the cortex as the
    # same thin stub, so their first frames cannot tell them apart (benchmarks/accuracy.py
    # reports the per-frame agreement too).
    leaking = [c for c in measured if c["scenario"] not in ("no_leak", "posterior_approach")]
    truth = [set(c["truth"]["frames"][-1]["leak_classes"]) for c in leaking]
    ours = [set(c["results"][-1].leak_classes) for c in leaking]
    assert all(truth), "every leak case ends with a true leak"
    right = sum(t == o for t, o in zip(truth, ours))
    assert right >= 0.9 * len(leaking)


def stop_times(case):
    truth_stop = first_time(((e["time_s"], e) for e in case["truth"]["events"]), lambda e: e["level"] == "stop")
    ours = first_time(((r.time_s, r) for r in case["results"]), lambda r: r.alert is AlertLevel.STOP)
    return truth_stop, ours


def test_every_stopping_case_stops(measured):
    for case in (c for c in measured if c["scenario"] in STOPPING):
        truth_stop, ours = stop_times(case)
        assert truth_stop is not None and ours is not None, case["name"]


def test_stop_comes_no_later_than_one_frame_after_the_truth(measured):
    late = []
    for case in (c for c in measured if c["scenario"] in STOPPING):
        truth_stop, ours = stop_times(case)
        if ours is None or ours > next_frame_time(case["truth"]["frames"], truth_stop) + 1e-3:
            late.append((case["name"], truth_stop, ours))
    assert not late


def test_a_late_stop_is_unreliable_until_it_comes(measured):
    """Safety over silence: where the stop comes late (a vein's first pixels beyond the outline too few
    for the leak rules, a front running on unseen in the needle's shadow farther than
    ``alerts.hidden_stop_mm``), every frame from one frame after the truth's stop until ours is
    unreliable, never ok or warn."""
    silent = []
    for case in (c for c in measured if c["scenario"] in STOPPING):
        truth_stop, ours = stop_times(case)
        due = next_frame_time(case["truth"]["frames"], truth_stop)
        for r in case["results"]:
            before_ours = ours is None or r.time_s < ours
            if due + 1e-3 < r.time_s and before_ours and r.alert in (AlertLevel.OK, AlertLevel.WARN):
                silent.append((case["name"], r.frame, r.alert.value))
    assert not silent


def next_frame_time(frames, time_s):
    """When the frame after the one at ``time_s`` came, s: one frame interval later, also with jittered times."""
    return min((f["time_s"] for f in frames if f["time_s"] > time_s + 1e-9), default=time_s)


def early_limit(case):
    """The earliest a stop is justified: the true front 4 mm from the wall, or a true leak."""
    frames = case["truth"]["frames"]
    near = first_time(((f["time_s"], f) for f in frames), lambda f: f["front_to_wall_mm"] is not None and f["front_to_wall_mm"] <= 4.0)
    leak = first_time(((f["time_s"], f) for f in frames), lambda f: bool(f["leak_classes"]))
    return min((t for t in (near, leak) if t is not None), default=math.inf)


def test_stop_never_comes_before_the_front_was_4_mm_from_the_wall_or_a_leak(measured):
    early = []
    for case in (c for c in measured if c["scenario"] in STOPPING):
        _, ours = stop_times(case)
        if ours is not None and ours < early_limit(case) - 1e-3:
            early.append((case["name"], ours, early_limit(case)))
    assert not early


def test_too_poor_frames_are_never_ok():
    sim = simulate("posterior_approach", seed=3, options=SynthOptions(frames=30, dose="low"))
    frames = as_ingested(sim.run)
    rng = np.random.default_rng(0)
    poor = [12, 13, 14, 20]
    frames[poor] += rng.normal(0.0, 900.0, size=frames[poor].shape).astype(np.float32)  # ~2.4 log units
    frames[25] = 0.0  # no exposure at all
    out = analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), frames=frames)
    for i in poor + [25]:
        assert out[i].result.alert is not AlertLevel.OK, i
    assert out[25].result.reason.endswith("saturated_or_empty_frame")
    assert all(out[i].result.reason.endswith("image_too_noisy") for i in poor)
    assert out[18].result.alert is not AlertLevel.UNRELIABLE  # clean frames recover after the hold time


def test_the_accuracy_benchmark_runs_analyze_and_evaluate_and_writes_its_table(tmp_path):
    # Smoke run of benchmarks/accuracy.py (one plain case per scenario), so it cannot rot.
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"
    out_json, out_md = tmp_path / "accuracy.json", tmp_path / "accuracy.md"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(out_json), "--markdown", str(out_md)],
        check=True, capture_output=True, text=True,
    )
    data = json.loads(out_json.read_text())
    assert {"metadata", "results", "cases"} <= set(data)
    assert [row["scenario"] for row in data["results"]] == [*SCENARIOS, "all"]
    assert len(data["cases"]) == len(SCENARIOS)
    for row in data["results"]:
        assert 0.0 <= row["front_error_median_mm"] < 5.0 and 0.0 < row["dice_median"] <= 1.0
    assert next(r for r in data["results"] if r["scenario"] == "no_leak")["false_alerts"] == 0
    assert out_md.read_text().startswith("| scenario |")
