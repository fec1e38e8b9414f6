"""Automatic anatomy on the phantom: corners, posterior wall, and the analysis without WALL.json.

For every case (scenario x nuisance variant x seed, the variants of benchmarks/accuracy.py,
lateral; plus AP cases) the phantom run is written as DICOM with its truth file;
``vpimage analyze`` runs on it *without* ``--wall`` (the corners are found automatically)
and ``vpimage evaluate`` scores it, exactly as a user would run them. Reported:

- anatomy, per view: detection rate (confidence >= MIN_CONFIDENCE), corner error median /
  p95 (mm), posterior-wall angle error median / p95 (degrees), needle tip error (mm);
- the analysis table of benchmarks/accuracy.py in automatic mode (lateral cases);
- the issue's criteria: alert criteria met or else ``unreliable`` (never wrong), leak
  classes right on leak cases, none spurious on no_leak cases; beside them, the alert
  criteria on the same lateral cases analysed with the truth's corners as WALL.json
  (benchmarks/accuracy.py's ``run_case``), which separates what the automatic corners
  cost from what the analysis itself misses.

::

    python benchmarks/anatomy.py --json benchmarks/results/anatomy--cpu.json \
        [--markdown benchmarks/results/anatomy--cpu.md] [--seeds 3] [--quick] [--exposure-changes]
        [--collimation-change] [--needle-withdrawal]

``--quick`` runs one plain lateral posterior breach and one plain AP case (a smoke test);
``--exposure-changes``, ``--collimation-change`` and ``--needle-withdrawal`` as in
benchmarks/accuracy.py.
Seeds (3000 and up) are not those the detector or the analysis was tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
import numpy as np
from accuracy import (STOPPING, VARIANTS, add_nuisance_flags, case_scores, markdown, metadata, nuisances, run_case,
                      seed_count, table)

from vpimage.anatomy import MIN_CONFIDENCE, corner_errors_px, wall_angle_error_deg
from vpimage.measures import Corners
from vpimage.synth._phantom import SCENARIOS

AP_VARIANTS = ("plain", "low-dose, tilt 25")
QUICK = {("posterior_breach", "plain", "lateral"), ("no_leak", "plain", "ap")}


def run_auto_case(scenario: str, seed: int, variant: dict, folder: Path, view: str = "lateral") -> dict:
    """One case as benchmarks/accuracy.py runs it (``run_case``), but analysed without WALL.json;
    the automatic corners and needle are then scored against the truth file it wrote."""
    case = run_case(scenario, seed, dict(variant, view=view), folder, wall=False)
    summary = json.loads((folder / "analysis" / "summary.json").read_text())
    truth = json.loads((folder / "truth.json").read_text())
    return dict(case, view=view, max_alert=summary["max_alert"], anatomy=anatomy_scores(summary, truth))


def anatomy_scores(summary: dict, truth: dict) -> dict:
    """The automatic corners and needle against the truth (None where not found)."""
    mm = truth["mm_per_px"]
    anatomy = summary["anatomy"]
    found = summary["wall"] is not None
    scores = {"confidence": summary["wall_confidence"], "found": found, "reason": anatomy["reason"],
              "corner_errors_mm": None, "wall_angle_error_deg": None, "needle_tip_error_mm": None}
    if found:
        reference = Corners.from_dict(truth["vertebral_body"])
        corners = Corners.from_dict(summary["wall"])
        scores["corner_errors_mm"] = (corner_errors_px(corners, reference) * mm).round(3).tolist()
        scores["wall_angle_error_deg"] = round(wall_angle_error_deg(corners, reference), 3)
    if anatomy["needle"] is not None:
        tip = np.subtract(anatomy["needle"]["tip_px"], truth["needle"]["tip_px"])
        scores["needle_tip_error_mm"] = round(float(np.linalg.norm(tip) * mm), 3)
    return scores


def _stat(values, q: float) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else None


def anatomy_rows(cases: list[dict]) -> list[dict]:
    """One row per view: detection rate and the errors of what was found."""
    rows = []
    for view in ("lateral", "ap"):
        scores = [c["anatomy"] for c in cases if c["view"] == view]
        if not scores:
            continue
        corners = [e for s in scores if s["corner_errors_mm"] for e in s["corner_errors_mm"]]
        angles = [s["wall_angle_error_deg"] for s in scores]
        rows.append({
            "view": view, "cases": len(scores), "found": sum(s["found"] for s in scores),
            "corner_error_median_mm": _stat(corners, 50), "corner_error_p95_mm": _stat(corners, 95),
            "wall_angle_median_deg": _stat(angles, 50), "wall_angle_p95_deg": _stat(angles, 95),
            "needle_tip_error_median_mm": _stat([s["needle_tip_error_mm"] for s in scores], 50),
            "confidence_min": min((s["confidence"] for s in scores), default=None),
        })
    return rows


def alert_criteria_met(case: dict) -> bool:
    """The analysis issue's alert criteria on one case: a stopping case stops no later than
    one frame after the truth, no case stops before the true front is 4 mm from the wall
    (or a leak shows), and no_leak never warns or stops."""
    s = case_scores(case)
    return bool(s["stop_on_time"] and s["stop_not_early"] and not s["false_alert"])


def unreliable_instead(case: dict) -> bool:
    """Alert criteria not met, but never wrong: the study is unreliable throughout (no wall
    found), or its one miss is a late stop whose frames were all unreliable (never ok or
    warn) from when the stop was due until it came."""
    if case["max_alert"] == "unreliable":
        return True
    s = case_scores(case)
    return bool(s["stop_late_but_unreliable"] and s["stop_not_early"] and not s["false_alert"])


def leak_classes_right(evaluation: dict) -> bool:
    """Every true leak class found and none spurious."""
    return not evaluation["leak_classes_missed"] and not evaluation["leak_classes_spurious"]


def criteria(cases: list[dict]) -> dict:
    """The issue's criteria over the lateral cases in automatic mode, beside WALL.json."""
    lateral = [c for c in cases if c["view"] == "lateral"]
    met = unreliable = 0
    wrong, anatomy_lost = [], []
    for case in lateral:
        name = f"{case['scenario']}/{case['seed']}"
        if alert_criteria_met(case):
            met += 1
        elif unreliable_instead(case):
            unreliable += 1
        else:
            wrong.append(name)
        if case["met_with_wall"] and not alert_criteria_met(case):
            anatomy_lost.append(name)
    leak_cases = [c for c in lateral if any(f["leak_classes"] for f in c["truth_frames"])]
    leaks_right = sum(leak_classes_right(c["evaluation"]) for c in leak_cases)
    spurious = sum(bool(c["evaluation"]["leak_classes_spurious"]) for c in lateral if c["scenario"] == "no_leak")
    # AP: leak classes are the lateral view's; what counts is that a leak is reported at all.
    ap = [(bool(c["evaluation"]["leak_classes_found"] or c["evaluation"]["leak_classes_missed"]),
           bool(c["evaluation"]["leak_classes_found"] or c["evaluation"]["leak_classes_spurious"]))
          for c in cases if c["view"] == "ap"]
    return {"cases": len(lateral), "alert_criteria_met": met, "unreliable_instead": unreliable, "wrong": wrong,
            "alert_criteria_met_with_wall": sum(c["met_with_wall"] for c in lateral),
            "met_with_wall_only": anatomy_lost,
            "leak_cases": len(leak_cases), "leak_classes_right": leaks_right,
            "leak_classes_right_with_wall": sum(c["leaks_right_with_wall"] for c in leak_cases),
            "ap_leak_cases": sum(true for true, _ in ap), "ap_leak_reported": sum(true and seen for true, seen in ap),
            "ap_no_leak_cases": sum(not true for true, _ in ap),
            "ap_leak_reported_without_leak": sum(seen and not true for true, seen in ap), "no_leak_cases_with_spurious_leak": spurious}


def anatomy_markdown(rows: list[dict], summary: dict) -> str:
    def cell(v):
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    head = ("view", "cases", "found (confidence >= %.2f)" % MIN_CONFIDENCE, "corner error mm median / p95",
            "wall angle error deg median / p95", "needle tip error mm median", "lowest confidence")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["view"], str(r["cases"]), f"{r['found']}/{r['cases']}",
            f"{cell(r['corner_error_median_mm'])} / {cell(r['corner_error_p95_mm'])}",
            f"{cell(r['wall_angle_median_deg'])} / {cell(r['wall_angle_p95_deg'])}",
            cell(r["needle_tip_error_median_mm"]), cell(r["confidence_min"])]) + " |")
    n = summary["cases"]
    lines += ["", f"- Alert criteria met without WALL.json: {summary['alert_criteria_met']}/{n}; "
              f"unreliable instead: {summary['unreliable_instead']}; wrong: {len(summary['wrong'])} "
              f"{' '.join(summary['wrong'])}".rstrip(),
              f"- The same cases with WALL.json (the truth's corners): {summary['alert_criteria_met_with_wall']}/{n}; "
              f"met with WALL.json but not automatically: {len(summary['met_with_wall_only'])} "
              f"{' '.join(summary['met_with_wall_only'])}".rstrip(),
              f"- Leak classes right on {summary['leak_classes_right']}/{summary['leak_cases']} leak cases "
              f"(with WALL.json: {summary['leak_classes_right_with_wall']}); "
              f"no_leak cases with a spurious leak: {summary['no_leak_cases_with_spurious_leak']}.",
              f"- AP: a leak reported on {summary['ap_leak_reported']}/{summary['ap_leak_cases']} cases with a leak, "
              f"on {summary['ap_leak_reported_without_leak']}/{summary['ap_no_leak_cases']} cases without."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_count, default=3, help="seeds per scenario and lateral variant (1-10)")
    parser.add_argument("--quick", action="store_true", help="one plain lateral breach, one plain AP case")
    parser.add_argument("--json", required=True, type=Path, help="where the results go")
    parser.add_argument("--markdown", type=Path, help="where the markdown tables go")
    add_nuisance_flags(parser)
    args = parser.parse_args(argv)
    variants = {name: dict(variant, **nuisances(args)) for name, variant in VARIANTS.items()}
    plan = [(scenario, name, "lateral", 3000 + 100 * s + 10 * v + k)
            for s, scenario in enumerate(SCENARIOS) for v, name in enumerate(VARIANTS) for k in range(args.seeds)]
    plan += [(scenario, name, "ap", 3900 + 10 * s + v)
             for s, scenario in enumerate(SCENARIOS) for v, name in enumerate(AP_VARIANTS)]
    if args.quick:  # the first seed of each smoke case
        firsts = {c[:3]: c for c in reversed(plan) if c[:3] in QUICK}.values()
        plan = sorted(firsts, key=plan.index)
    cases = []
    with tempfile.TemporaryDirectory() as scratch:
        for scenario, name, view, seed in plan:
            folder = Path(scratch) / f"{scenario}-{view}-{seed}"
            folder.mkdir()
            case = run_auto_case(scenario, seed, variants[name], folder, view=view)
            case["variant_name"] = name
            if view == "lateral":  # the same case with the truth's corners as WALL.json
                (folder / "wall").mkdir()
                annotated = run_case(scenario, seed, variants[name], folder / "wall")
                case["met_with_wall"] = alert_criteria_met(annotated)
                case["leaks_right_with_wall"] = leak_classes_right(annotated["evaluation"])
            cases.append(case)
            print(f"{scenario} {view} {name} seed {seed}: {case['anatomy']}", file=sys.stderr, flush=True)
    lateral = [c for c in cases if c["view"] == "lateral"]
    rows, analysis, summary = anatomy_rows(cases), table(lateral), criteria(cases)
    per_case = [{"scenario": c["scenario"], "seed": c["seed"], "variant": c["variant_name"], "view": c["view"],
                 "anatomy": c["anatomy"], "max_alert": c["max_alert"], "met_with_wall": c.get("met_with_wall"),
                 "leaks_right_with_wall": c.get("leaks_right_with_wall"),
                 **({} if c["view"] == "ap" else case_scores(c))} for c in cases]
    text = anatomy_markdown(rows, summary) + "\nThe analysis in automatic mode (lateral cases):\n\n" + markdown(analysis)
    print(text)
    meta = dict(metadata(args), suite="anatomy", stopping_scenarios=sorted(STOPPING))
    results = {"metadata": meta, "anatomy": rows, "criteria": summary, "analysis": analysis, "cases": per_case}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
