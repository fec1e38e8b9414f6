"""Accuracy of ``vpimage analyze`` on the phantom, per scenario, scored by ``vpimage evaluate``.

For every case (scenario x nuisance variant x seed) the phantom run is written as DICOM
with its truth file and WALL.json (the truth's frame-0 corners); ``vpimage analyze`` and
``vpimage evaluate`` run on it exactly as a user would run them. The per-case scores are
gathered into a table per scenario, written as JSON (``{"metadata", "results"}``) and as
markdown (the table the README shows)::

    python benchmarks/accuracy.py --json benchmarks/results/accuracy--cpu.json \
        [--markdown benchmarks/results/accuracy--cpu.md] [--seeds 3] [--quick] [--exposure-changes]
        [--collimation-change] [--needle-withdrawal]

``--quick`` runs one seed of the plain variant per scenario (a smoke test).
``--exposure-changes`` images every case with the tube output varying as automatic exposure
control makes it (the phantom's ``exposure_changes``), ``--collimation-change`` with the
collimator blades closing in once during the injection (``collimation_change``),
``--needle-withdrawal`` with the needle pulled back once (``needle_withdrawal``); the same
seeds otherwise (see :data:`NUISANCES`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vpimage import __version__
from vpimage.cli import main as vpimage_main
from vpimage.evaluate import DICE_MIN_AREA_MM2
from vpimage.synth._dicom import write_dicom
from vpimage.synth._phantom import SCENARIOS, SynthOptions, simulate

# Nuisances the issue asks the analysis to survive; every case has breathing motion.
VARIANTS = {
    "plain": {},
    "low-dose, tilt 25": {"dose": "low", "tilt_deg": 25.0},
    "MONOCHROME1, collimated, shift, tilt 10": {
        "photometric": "MONOCHROME1", "field": "rectangle", "sudden_shift": True, "tilt_deg": 10.0},
    "low-dose, shift, MONOCHROME1": {"dose": "low", "sudden_shift": True, "photometric": "MONOCHROME1"},
    "high-dose, tilt 20, jittered times": {"dose": "high", "tilt_deg": 20.0, "jitter": True},
}
STOPPING = {"posterior_approach", "posterior_breach", "venous_leak", "disc_leak", "anterior_leak"}
# Changes during the injection a whole run can add to every case: the phantom's option, and
# the name its variants take and its flag's help.
NUISANCES = {
    "exposure_changes": (
        "exposure changes", "every case with the tube output varying as automatic exposure control makes it"),
    "collimation_change": (
        "collimation change", "every case with the collimator blades closing in once during the injection"),
    "needle_withdrawal": (
        "needle withdrawal", "every case with the needle pulled back 3-8 mm along its shaft once during the injection"),
}


def run_case(scenario: str, seed: int, variant: dict, folder: Path, *, wall: bool = True) -> dict:
    """Simulate, write, analyse and evaluate one case; return its scores.

    ``wall=False`` analyses without WALL.json (the corners found automatically).
    """
    sim = simulate(scenario, seed=seed, options=SynthOptions(**variant))
    (dcm,) = write_dicom(sim.run, folder / "run.dcm", obj="xa")
    truth, wall_file = sim.save_truth(folder / "truth.json"), sim.save_wall(folder / "WALL.json")
    out = folder / "analysis"
    annotation = ["--wall", str(wall_file)] if wall else []
    if vpimage_main(["analyze", str(dcm), "--out", str(out), *annotation, "--quiet"]) != 0:
        raise RuntimeError(f"analyze failed on {scenario}/{seed}")
    with contextlib.redirect_stdout(io.StringIO()):  # evaluate prints its report; we read evaluation.json
        status = vpimage_main(["evaluate", str(out), str(truth)])
    if status != 0:
        raise RuntimeError(f"evaluate failed on {scenario}/{seed}")
    evaluation = json.loads((out / "evaluation.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    return {"scenario": scenario, "seed": seed, "variant": variant,
            "evaluation": evaluation, "processing_fps": summary["processing_fps"],
            "truth_events": sim.truth["events"], "truth_frames": sim.truth["frames"],
            **frame_scores(out, sim, evaluation)}


def frame_scores(out: Path, sim, evaluation: dict) -> dict:
    """Per frame, as the issue pools them over the case set: |front_to_wall_mm error| over
    the frames with cement in the body (a frame without a front counts as infinite; an
    unreliable one is scored on the front it reports, as evaluate scores it), the Dice of
    the frames with at least ``DICE_MIN_AREA_MM2`` of cement (``evaluation``'s), and the frames that say ``ok`` or ``warn``
    after the stop was due (one frame after the truth's) and before it came."""
    with open(out / "frames.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    errors = []
    for row, truth in zip(rows, sim.truth["frames"]):
        if truth["front_to_wall_mm"] is not None:
            ours = float(row["front_to_wall_mm"] or "nan")
            errors.append(abs(ours - truth["front_to_wall_mm"]) if math.isfinite(ours) else math.inf)
    dice = [scores["dice"] for scores, record in zip(evaluation["per_frame"], sim.truth["frames"])
            if record["cement_area_mm2"] >= DICE_MIN_AREA_MM2]
    return {"front_errors_mm": errors, "dice_large_frames": dice,
            "silent_frames_after_due_stop": silent_frames_after_due_stop(rows, sim.truth)}


def silent_frames_after_due_stop(rows: list[dict], truth: dict) -> int:
    """How many of the analysis's ``frames.csv`` ``rows`` say ``ok`` or ``warn`` after the stop
    was due (the frame after the truth's first stop) and before the analysis's first stop."""
    truth_stop = _first(truth["events"], "stop")
    if truth_stop is None:
        return 0
    due = min((f["time_s"] for f in truth["frames"] if f["time_s"] > truth_stop + 1e-9), default=truth_stop)
    stopped = next((float(r["time_s"]) for r in rows if r["alert"] == "stop"), math.inf)
    return sum(due + 1e-3 < float(r["time_s"]) < stopped and r["alert"] in ("ok", "warn") for r in rows)


def _first(events, level):
    return next((e["time_s"] for e in events if e["level"] == level), None)


def case_scores(case: dict) -> dict:
    """The numbers the table aggregates: evaluate's report, plus the timing rules of the issue."""
    ev = case["evaluation"]
    stop = ev["first_stop_s"]
    frames = case["truth_frames"]
    near = next((f["time_s"] for f in frames if f["front_to_wall_mm"] is not None and f["front_to_wall_mm"] <= 4.0), None)
    leak = next((f["time_s"] for f in frames if f["leak_classes"]), None)
    earliest = min((t for t in (near, leak) if t is not None), default=math.inf)
    stopping = case["scenario"] in STOPPING
    on_time = stop["difference_frames"] is not None and stop["difference_frames"] <= 1
    return {
        "front_error_median_mm": ev["front_to_wall_abs_error_mm_median"],
        "front_error_p95_mm": ev["front_to_wall_abs_error_mm_p95"],
        "unmeasured_frames": ev["front_to_wall_unmeasured_frames"],
        "dice": ev["dice"],
        "dice_frame_mean": ev["dice_frame_mean"],
        "stop_delay_s": stop["difference"],
        "stop_on_time": (not stopping) or on_time,
        "stop_not_early": stop["analysis"] is None or stop["analysis"] >= earliest - 1e-3,
        # Late, but never ok or warn while the stop was due: unreliable until it came.
        "stop_late_but_unreliable": stopping and not on_time and case["silent_frames_after_due_stop"] == 0,
        "false_alert": (not stopping) and ev["first_warn_s"]["analysis"] is not None,
        "leaks_missed": ev["leak_classes_missed"],
        "leaks_spurious": ev["leak_classes_spurious"],
        "leak_class_frames": ev["leak_class_frames"],
        "leak_class_frames_agreeing": round(ev["leak_class_frames"] * (ev["leak_class_frame_agreement"] or 0.0)),
        "alert_agreement": ev["alert_agreement"],
        "processing_fps": case["processing_fps"],
    }


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def table(cases: list[dict]) -> list[dict]:
    """One row per scenario (and "all"): medians over its cases of evaluate's scores."""
    rows = []
    for scenario in [*SCENARIOS, "all"]:
        scores = [case_scores(c) for c in cases if scenario in ("all", c["scenario"])]
        if not scores:
            continue
        p95 = [s["front_error_p95_mm"] for s in scores if s["front_error_p95_mm"] is not None]
        stopping = [s for s, c in zip(scores, (c for c in cases if scenario in ("all", c["scenario"])))
                    if c["scenario"] in STOPPING]
        chosen = [c for c in cases if scenario in ("all", c["scenario"])]
        errors = np.concatenate([c["front_errors_mm"] for c in chosen])
        dice = np.concatenate([c["dice_large_frames"] for c in chosen])
        rows.append({
            "scenario": scenario,
            "cases": len(scores),
            "front_error_p95_mm_pooled": float(np.percentile(errors, 95)) if errors.size else None,
            "dice_share_0_90_large_frames": float(np.mean(dice >= 0.90)) if dice.size else None,
            "dice_p5_large_frames": float(np.percentile(dice, 5)) if dice.size else None,
            "front_error_median_mm": _median(s["front_error_median_mm"] for s in scores),
            "front_error_p95_mm_median": _median(p95),
            "front_error_p95_mm_max": max(p95) if p95 else None,
            "dice_median": _median(s["dice"] for s in scores),
            "dice_frame_mean_min": min((s["dice_frame_mean"] for s in scores if s["dice_frame_mean"] is not None), default=None),
            "stop_on_time": f"{sum(s['stop_on_time'] for s in stopping)}/{len(stopping)}" if stopping else None,
            "stop_late_but_unreliable": f"{sum(s['stop_late_but_unreliable'] for s in stopping)}/"
                                        f"{sum(not s['stop_on_time'] for s in stopping)}" if stopping else None,
            "stop_not_early": f"{sum(s['stop_not_early'] for s in scores)}/{len(scores)}",
            "stop_delay_median_s": _median(s["stop_delay_s"] for s in scores),
            "false_alerts": sum(s["false_alert"] for s in scores),
            "leak_classes_missed": sum(len(s["leaks_missed"]) for s in scores),
            "leak_classes_spurious": sum(len(s["leaks_spurious"]) for s in scores),
            "leak_classes_right": f"{sum(not s['leaks_missed'] and not s['leaks_spurious'] for s in scores)}/{len(scores)}",
            "leak_class_frame_agreement": _share(sum(s["leak_class_frames_agreeing"] for s in scores),
                                                 sum(s["leak_class_frames"] for s in scores)),
            "alert_agreement_median": _median(s["alert_agreement"] for s in scores),
            "processing_fps_median": _median(s["processing_fps"] for s in scores),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(v):
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    head = ("scenario", "cases", "median abs error mm", "p95 abs error mm (median / worst case)",
            "p95 abs error mm (all frames)", "Dice", "frames >= 20 mm2 with Dice >= 0.90",
            "stop <= 1 frame late", "late stops unreliable until they come", "stop not early", "median stop delay s", "false warn/stop",
            "leak classes missed / spurious", "cases with leak classes right",
            "leak frames with classes right")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["scenario"], str(r["cases"]), cell(r["front_error_median_mm"]),
            f"{cell(r['front_error_p95_mm_median'])} / {cell(r['front_error_p95_mm_max'])}",
            cell(r["front_error_p95_mm_pooled"]), cell(r["dice_median"]),
            f"{100 * r['dice_share_0_90_large_frames']:.0f} %" if r["dice_share_0_90_large_frames"] is not None else "-",
            cell(r["stop_on_time"]), cell(r["stop_late_but_unreliable"]), r["stop_not_early"], cell(r["stop_delay_median_s"]),
            str(r["false_alerts"]), f"{r['leak_classes_missed']} / {r['leak_classes_spurious']}",
            r["leak_classes_right"],
            f"{100 * r['leak_class_frame_agreement']:.0f} %" if r["leak_class_frame_agreement"] is not None else "-",
        ]) + " |")
    return "\n".join(lines) + "\n"


def seed_count(text: str) -> int:
    """``--seeds``: 1 to 10, the seeds a case's number holds in its last digit (seed 1321:
    scenario 3, variant 2, its seed 1)."""
    count = int(text)
    if not 1 <= count <= 10:
        raise argparse.ArgumentTypeError(f"must be 1 to 10 (a case's seed keeps it in one digit); got {count}")
    return count


def add_nuisance_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for each of :data:`NUISANCES` (``--exposure-changes``, ...)."""
    for option, (_, description) in NUISANCES.items():
        parser.add_argument("--" + option.replace("_", "-"), action="store_true", help=description)


def nuisances(args) -> dict:
    """The phantom options of the nuisances ``args`` ask for, ``{option: True}``."""
    return {option: True for option in NUISANCES if getattr(args, option, False)}


def metadata(args) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"suite": "accuracy", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
            "vpimage": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "host": platform.node(), "seeds": args.seeds, "quick": args.quick,
            **{option: getattr(args, option, False) for option in NUISANCES}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, type=Path, help="where the results go")
    parser.add_argument("--markdown", type=Path, help="where the markdown table goes")
    parser.add_argument("--seeds", type=seed_count, default=3, help="seeds per scenario and variant (1-10)")
    parser.add_argument("--quick", action="store_true", help="one seed, plain variant (smoke test)")
    add_nuisance_flags(parser)
    args = parser.parse_args(argv)
    variants = dict(list(VARIANTS.items())[:1]) if args.quick else VARIANTS
    for option in nuisances(args):
        label = NUISANCES[option][0]
        variants = {f"{name}, {label}": dict(variant, **{option: True}) for name, variant in variants.items()}
    seeds = 1 if args.quick else args.seeds
    cases = []
    with tempfile.TemporaryDirectory() as scratch:
        for s_index, scenario in enumerate(SCENARIOS):
            for v_index, (name, variant) in enumerate(variants.items()):
                for k in range(seeds):
                    seed = 1000 + 100 * s_index + 10 * v_index + k
                    folder = Path(scratch) / f"{scenario}-{seed}"
                    folder.mkdir()
                    case = run_case(scenario, seed, variant, folder)
                    case["variant_name"] = name
                    cases.append(case)
                    print(f"{scenario} {name} seed {seed}: done", file=sys.stderr, flush=True)
    rows = table(cases)
    per_case = [{"scenario": c["scenario"], "seed": c["seed"], "variant": c["variant_name"], **case_scores(c)}
                for c in cases]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"metadata": metadata(args), "results": rows, "cases": per_case}, indent=2) + "\n")
    text = markdown(rows)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
