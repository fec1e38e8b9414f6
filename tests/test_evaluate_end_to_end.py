"""``vpimage synth`` -> ``vpimage analyze`` -> ``vpimage evaluate`` on a short posterior approach."""

import json

import pytest

from vpimage.cli import main
from vpimage.evaluate import EVALUATION_FILE

REPORT_KEYS = {
    "frames",
    "dice",
    "dice_frame_mean",
    "dice_min_large_frames",
    "dice_large_frames",
    "front_to_wall_frames",
    "front_to_wall_unmeasured_frames",
    "front_to_wall_abs_error_mm_median",
    "front_to_wall_abs_error_mm_p95",
    "depth_fraction_abs_error_median",
    "depth_fraction_abs_error_p95",
    "first_warn_s",
    "first_stop_s",
    "leak_classes_found",
    "leak_classes_missed",
    "leak_classes_spurious",
    "leak_class_frames",
    "leak_class_frame_agreement",
    "alert_agreement",
}
# 12 s at 4 fps: posterior_approach reaches its end state (warn, then stop) within the clip.
FRAMES, FPS, SIZE = 48, 4, 192


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """(result folder, truth path) of a synth run analysed with its WALL.json."""
    folder = tmp_path_factory.mktemp("e2e")
    run, truth, wall, out = folder / "run.dcm", folder / "truth.json", folder / "WALL.json", folder / "result"
    synth = ["synth", "posterior_approach", "--out", str(run), "--truth", str(truth), "--wall", str(wall)]
    assert main(synth + ["--frames", str(FRAMES), "--fps", str(FPS), "--size", str(SIZE), "--seed", "3"]) == 0
    assert main(["analyze", str(run), "--out", str(out), "--wall", str(wall), "--backend", "numpy", "--quiet"]) == 0
    return out, truth


def test_evaluate_end_to_end(evaluated, capsys):
    out, truth_path = evaluated
    capsys.readouterr()
    assert main(["evaluate", str(out), str(truth_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / EVALUATION_FILE).read_text())
    assert len(report.pop("per_frame")) == FRAMES
    assert printed == report
    assert set(report) == REPORT_KEYS

    truth = json.loads(truth_path.read_text())
    assert report["frames"] == FRAMES == len(truth["frames"])
    in_body = sum(f["front_to_wall_mm"] is not None for f in truth["frames"])
    assert report["front_to_wall_frames"] == in_body > 0
    assert 0 <= report["front_to_wall_unmeasured_frames"] < in_body
    assert 0.0 <= report["front_to_wall_abs_error_mm_median"] <= report["front_to_wall_abs_error_mm_p95"]
    assert 0.0 <= report["depth_fraction_abs_error_median"] <= report["depth_fraction_abs_error_p95"] < 0.1
    assert 0.0 <= report["dice"] <= 1.0 and 0.0 <= report["dice_frame_mean"] <= 1.0
    # Loose sanity bounds, far from the measured 0.92 and 1.4 mm (seed 3): masks or frames
    # paired wrongly anywhere in the chain (transposed, shifted by a frame) fall far below.
    assert report["dice"] > 0.5
    assert report["front_to_wall_abs_error_mm_median"] < 5.0
    assert 0.0 <= report["alert_agreement"] <= 1.0

    # The truth side of the timings is the truth file's own events.
    first = {level: next(e["time_s"] for e in truth["events"] if e["level"] in wanted)
             for level, wanted in (("warn", {"warn", "stop"}), ("stop", {"stop"}))}
    for level in ("warn", "stop"):
        timing = report[f"first_{level}_s"]
        assert timing["truth"] == pytest.approx(first[level])
        if timing["analysis"] is None:
            assert timing["difference"] is None and timing["difference_frames"] is None
        else:
            assert timing["difference"] == pytest.approx(timing["analysis"] - timing["truth"])
            # In frames: the analysis' frame at its time less the truth's at its time.
            index = {round(f["time_s"], 6): f["frame"] for f in truth["frames"]}
            frames = index[round(timing["analysis"], 6)] - index[round(timing["truth"], 6)]
            assert timing["difference_frames"] == frames
    # No leak in this scenario: nothing to find or miss.
    assert report["leak_classes_found"] == report["leak_classes_missed"] == []
    assert report["leak_class_frames"] == 0 and report["leak_class_frame_agreement"] is None
