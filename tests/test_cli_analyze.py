"""``vpimage analyze`` end to end: phantom DICOM in, the files of CONTRACT.md out."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

import vpimage.io
from vpimage.cli import main
from vpimage.cli.analyze import _on_first_frame
from vpimage.config import RunConfig
from vpimage.engine import Engine
from vpimage.measures import Corners
from vpimage.outputs import MASKS_FILE, read_masks_npz
from vpimage.synth._dicom import write_dicom
from vpimage.synth._phantom import SynthOptions, simulate

CONTRACT_COLUMNS = [
    "frame", "time_s", "cement_area_px", "cement_area_mm2", "front_to_wall_px", "front_to_wall_mm",
    "depth_fraction", "front_speed_mm_s", "time_to_wall_s", "leak_area_mm2", "leak_classes", "alert", "reason",
]
SUMMARY_KEYS = {
    "frames", "duration_s", "fps", "mm_per_px", "calibration", "wall_source", "wall", "max_alert", "first_warn_s",
    "first_stop_s", "leak_classes", "final_cement_area_mm2", "backend", "device", "processing_fps", "version",
}
WG04 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "wg04" / "XA1_UNC.dcm"


@pytest.fixture(scope="module")
def breach(tmp_path_factory):
    """A short posterior breach written as legacy XA, with its truth and WALL.json."""
    folder = tmp_path_factory.mktemp("breach")
    sim = simulate("posterior_breach", seed=5, options=SynthOptions(size_px=256, photometric="MONOCHROME1"))
    assert sim.truth["events"][-1]["level"] == "stop"  # the clip is long enough to breach
    (dcm,) = write_dicom(sim.run, folder / "breach.dcm", obj="xa")
    return {"sim": sim, "dcm": dcm, "wall": sim.save_wall(folder / "WALL.json"), "truth": sim.save_truth(folder / "truth.json")}


@pytest.fixture(scope="module")
def analysed(breach, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    status = main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--overlay", "--quiet"])
    assert status == 0
    return out


def read_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_frames_csv_has_the_contract_columns_and_one_row_per_frame(breach, analysed):
    with open(analysed / "frames.csv", newline="") as stream:
        header = next(csv.reader(stream))
    assert header[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    rows = read_rows(analysed / "frames.csv")
    truth = breach["sim"].truth["frames"]
    assert [int(r["frame"]) for r in rows] == list(range(len(truth)))
    np.testing.assert_allclose([float(r["time_s"]) for r in rows], [f["time_s"] for f in truth], atol=1e-3)
    mm_per_px = breach["sim"].run.mm_per_px
    measured = [r for r in rows if r["front_to_wall_mm"] != ""]
    for r in measured:  # the mm columns are the px columns at the study's calibration
        assert float(r["front_to_wall_mm"]) == pytest.approx(float(r["front_to_wall_px"]) * mm_per_px, rel=1e-4)
        assert float(r["cement_area_mm2"]) == pytest.approx(int(r["cement_area_px"]) * mm_per_px**2, rel=1e-4)
    # Before the breach the front is where the truth has it, within 2 px on this one small
    # 256 px run (tests/test_accuracy.py holds the analysis to the targets).
    errors = [
        abs(float(r["front_to_wall_mm"]) - f["front_to_wall_mm"])
        for r, f in zip(rows, truth)
        if f["front_to_wall_mm"] is not None and f["front_to_wall_mm"] >= 0 and r["front_to_wall_mm"] != ""
    ]
    assert len(errors) > 15 and np.median(errors) <= 2 * mm_per_px


def test_a_breach_stops_and_the_events_list_the_changes(breach, analysed):
    events = json.loads((analysed / "events.json").read_text())
    assert [set(e) for e in events] == [{"frame", "time_s", "level", "reason"}] * len(events)
    assert [e["time_s"] for e in events] == sorted(e["time_s"] for e in events)
    assert "stop" in [e["level"] for e in events]
    rows = read_rows(analysed / "frames.csv")
    levels = ["ok"] + [r["alert"] for r in rows]  # a study starts at ok
    changes = [rows[i]["frame"] for i in range(len(rows)) if levels[i + 1] != levels[i]]
    assert [str(e["frame"]) for e in events] == changes
    assert [e["level"] for e in events] == [rows[int(f)]["alert"] for f in changes]


def test_summary_records_the_run(breach, analysed):
    summary = json.loads((analysed / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    run = breach["sim"].run
    assert summary["frames"] == run.frames.shape[0]
    assert summary["mm_per_px"] == pytest.approx(run.mm_per_px, rel=1e-4)
    assert summary["wall_source"] == "annotation" and summary["backend"] == "numpy" and summary["device"] == "cpu"
    assert summary["max_alert"] == "stop" and summary["first_stop_s"] is not None
    assert summary["processing_fps"] > 0
    assert summary["skipped_files"] == []  # one file opened: nothing left out
    given = json.loads(Path(breach["wall"]).read_text())["vertebral_body"]
    assert set(summary["wall"]) == set(given)
    for name, point in given.items():
        assert summary["wall"][name] == pytest.approx(point)
    assert summary["wall_confidence"] is None and summary["anatomy"] is None  # the annotation wins


def test_without_wall_the_corners_are_found_and_the_breach_still_stops(breach, tmp_path):
    from vpimage.anatomy import MIN_CONFIDENCE, corner_errors_px
    from vpimage.measures import Corners

    assert main(["analyze", str(breach["dcm"]), "--out", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["wall_source"] == "auto" and summary["wall_frame"] == 0
    assert MIN_CONFIDENCE <= summary["wall_confidence"] <= 1.0
    sim = breach["sim"]
    errors = corner_errors_px(Corners.from_dict(summary["wall"]), Corners.from_dict(sim.truth["vertebral_body"]))
    assert np.median(errors) * sim.run.mm_per_px <= 1.5
    tip = summary["anatomy"]["needle"]["tip_px"]
    assert np.linalg.norm(np.subtract(tip, sim.truth["needle"]["tip_px"])) * sim.run.mm_per_px <= 1.5
    truth_stop = next(e["time_s"] for e in sim.truth["events"] if e["level"] == "stop")
    assert summary["max_alert"] == "stop"
    assert summary["first_stop_s"] <= truth_stop + 1.0 / sim.truth["fps"] + 1e-3


def test_config_toml_records_the_thresholds_and_reruns_alike(breach, analysed, tmp_path):
    from vpimage.config import RunConfig

    assert RunConfig.from_toml(analysed / "config.toml") == RunConfig.defaults()
    # A site's thresholds, with corners found automatically (whose leak margin the run widens
    # on top of the configured one: config.toml holds the configured one, so a rerun widens it alike).
    site = tmp_path / "site.toml"
    site.write_text("[alerts]\nwarn_mm = 6.5\nhold_s = 1.0\n[leaks]\nmargin_mm = 0.75\n")
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["analyze", str(breach["dcm"]), "--out", str(first), "--config", str(site), "--quiet"]) == 0
    recorded = RunConfig.from_toml(first / "config.toml")
    assert recorded == RunConfig.from_toml(site)
    assert recorded.alerts.warn_mm == 6.5 and recorded.leaks.margin_mm == 0.75
    assert main(["analyze", str(breach["dcm"]), "--out", str(again), "--config", str(first / "config.toml"), "--quiet"]) == 0
    assert (again / "frames.csv").read_text() == (first / "frames.csv").read_text()
    assert "(warn <= 6.5 mm)" in (first / "frames.csv").read_text()  # the site's threshold was the one used


def test_masks_and_time_of_arrival_follow_the_cement(breach, analysed):
    with np.load(analysed / "masks.npz") as data:
        cement, arrival = data["cement"], data["time_of_arrival_s"]
    frames = breach["sim"].run.frames
    assert cement.dtype == bool and cement.shape == frames.shape
    assert arrival.dtype == np.float32 and arrival.shape == frames.shape[1:]
    truth = breach["sim"].cement_masks[-1]
    assert 2 * (cement[-1] & truth).sum() / (cement[-1].sum() + truth.sum()) > 0.8
    reached = np.isfinite(arrival)
    assert reached.any() and np.nanmax(arrival) <= breach["sim"].run.time_s[-1] + 1e-6


def test_overlay_and_timeline_are_written(analysed):
    assert (analysed / "overlay.mp4").stat().st_size > 1000
    assert (analysed / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_patient_identity_in_any_output(breach, analysed):
    import pydicom

    ds = pydicom.dcmread(breach["dcm"], stop_before_pixels=True)
    identity = [str(v) for v in (ds.get("PatientName"), ds.get("PatientID")) if v]
    assert identity
    for path in analysed.iterdir():
        data = path.read_bytes()
        assert not any(value.encode() in data for value in identity), path.name


def test_a_name_in_a_corrupted_element_is_not_quoted_by_a_library_warning(breach, tmp_path, capsys):
    # PatientName's VR corrupted to UI: pydicom warns "Invalid value for VR UI: 'Doe^Jane'",
    # and the command line showed it as it was.
    ds = pydicom.dcmread(breach["dcm"])
    tag = Tag("PatientName")
    ds[tag] = RawDataElement(tag, "UI", 8, b"Doe^Jane", 0, False, True)
    path = tmp_path / "corrupted.dcm"
    ds.save_as(path, enforce_file_format=True)
    capsys.readouterr()
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--wall", str(breach["wall"])]) == 0
    printed = capsys.readouterr()
    assert "vpimage: warning: Invalid value for VR UI: (a value, not shown)." in printed.err
    assert "Doe" not in printed.err + printed.out


def test_a_study_named_after_its_patient_is_shown_by_its_key(breach, tmp_path, capsys):
    # A folder exported as DOE_JOHN_ID12345 (the header's name and id): summary.json's input
    # and the progress line gave the patient's name and id.
    ds = pydicom.dcmread(breach["dcm"])
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^John", "ID12345", "19400101"
    folder = tmp_path / "DOE_JOHN_ID12345"
    folder.mkdir()
    ds.save_as(folder / "IM0001.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["analyze", str(folder), "--out", str(out), "--wall", str(breach["wall"])]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"] == f"study_{summary['study_key']}"
    printed = capsys.readouterr().out
    assert printed.startswith(f"study_{summary['study_key']}: ")
    for path in out.iterdir():
        assert not any(word in path.read_bytes().upper() for word in (b"DOE", b"JOHN", b"ID12345")), path.name
    # Among several inputs, its subfolder is named after the study's key too (twice given:
    # twice, apart), and a name like DOE.JOHN keeps no suffix that holds the identity.
    dotted = tmp_path / "Doe.John"
    folder.rename(dotted)
    several = tmp_path / "several"
    capsys.readouterr()
    assert main(["analyze", str(dotted), str(dotted), str(breach["dcm"]), "--out", str(several),
                 "--wall", str(breach["wall"])]) == 0
    key = summary["study_key"]
    assert sorted(p.name for p in several.iterdir()) == sorted([f"study_{key}", f"study_{key}_2", "breach"])
    assert "DOE" not in capsys.readouterr().out.upper()
    # A name that holds no identity is shown as it is.
    plain = tmp_path / "plain"
    assert main(["analyze", str(breach["dcm"]), "--out", str(plain), "--wall", str(breach["wall"]), "--quiet"]) == 0
    assert json.loads((plain / "summary.json").read_text())["input"] == "breach.dcm"


@pytest.mark.parametrize("command", ["analyze", "info", "export"])
def test_a_warning_names_a_study_named_after_its_patient_by_its_key(breach, tmp_path, capsys, command):
    # The folder DOE_JOHN_ID12345 holds the study without its pixel spacing, and a file that is
    # no DICOM named after the patient: the warnings (no millimetres; a file skipped) named
    # the folder and the file, so the patient's name and id, in every command.
    ds = pydicom.dcmread(breach["dcm"])
    ds.PatientName, ds.PatientID = "Doe^John", "ID12345"
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword in ds:
            delattr(ds, keyword)
    folder = tmp_path / "DOE_JOHN_ID12345"
    folder.mkdir()
    ds.save_as(folder / "IM0001.dcm", enforce_file_format=True)
    (folder / "john_doe_notes.txt").write_text("not DICOM")
    out = tmp_path / ("out.npz" if command == "export" else "out")
    options = {"analyze": ["--out", str(out), "--wall", str(breach["wall"])], "info": [], "export": ["--out", str(out)]}
    capsys.readouterr()
    assert main([command, str(folder), *options[command]]) == 0
    with warnings.catch_warnings():  # (the library's own warnings name the path, as given)
        warnings.simplefilter("ignore")
        key = vpimage.io.open(folder).key
    err = capsys.readouterr().err
    assert f"study_{key}{os.sep}IM0001.dcm: no pixel spacing" in err or f"study_{key}: no pixel spacing" in err, err
    assert "1 file(s) skipped: study_" in err, err
    assert not any(word in err.upper() for word in ("DOE", "JOHN", "ID12345")), err


def test_several_inputs_get_one_folder_each_named_from_the_file(breach, tmp_path):
    other = tmp_path / "second.dcm"
    other.write_bytes(Path(breach["dcm"]).read_bytes())
    status = main(["analyze", str(breach["dcm"]), str(other), "--out", str(tmp_path / "out"), "--quiet"])
    assert status == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["breach", "second"]
    # Without --wall both copies are analysed alike, with corners found automatically.
    first, second = (read_rows(tmp_path / "out" / name / "frames.csv") for name in ("breach", "second"))
    assert first == second and len(first) == breach["sim"].run.frames.shape[0]
    summary = json.loads((tmp_path / "out" / "second" / "summary.json").read_text())
    assert summary["wall_source"] == "auto" and summary["wall"] is not None


def test_an_oblique_view_stops_and_warns_as_the_lateral_does_and_is_never_ok(breach, analysed, tmp_path):
    # The same run, its positioner angles turned 45 degrees off the lateral view.
    oblique = tmp_path / "oblique.dcm"
    ds = pydicom.dcmread(breach["dcm"])
    assert float(ds.PositionerPrimaryAngle) in (90.0, -90.0)  # the phantom's lateral view
    ds.PositionerPrimaryAngle = "45"
    ds.save_as(oblique)
    out = tmp_path / "out"
    assert main(["analyze", str(oblique), "--out", str(out), "--wall", str(breach["wall"]), "--quiet"]) == 0
    lateral, turned = read_rows(analysed / "frames.csv"), read_rows(out / "frames.csv")
    assert json.loads((out / "summary.json").read_text())["view"] == "oblique"
    for was, now in zip(lateral, turned):
        assert now["front_to_wall_mm"] == was["front_to_wall_mm"]  # measured alike
        if was["alert"] == "stop":
            assert (now["alert"], now["reason"]) == ("stop", was["reason"])
        elif was["alert"] == "warn" or was["reason"].startswith(("front_hidden", "leak_uncertain")):
            # the least it is, with the caveat after the frame's own reasons and doubts
            assert (now["alert"], now["reason"]) == (was["alert"], was["reason"] + "; oblique_view")
        else:
            assert (now["alert"], now["reason"]) == ("unreliable", "oblique_view")
    assert [row["alert"] for row in lateral].count("warn") >= 3
    assert {row["alert"] for row in turned} == {"unreliable", "warn", "stop"}


def test_millimetres_at_the_detector_plane_are_never_ok_and_stop_on_what_they_show(breach, analysed, tmp_path):
    """ImagerPixelSpacing without a magnification: distances read too large by it (the front
    nearer the wall than it reads), so a frame stops or warns on what it shows and is
    otherwise unreliable (magnification_unknown), never ok."""
    plane = tmp_path / "detector_plane.dcm"
    ds = pydicom.dcmread(breach["dcm"])
    assert "PixelSpacing" not in ds and "ImagerPixelSpacing" in ds
    for keyword in ("EstimatedRadiographicMagnificationFactor", "DistanceSourceToDetector", "DistanceSourceToPatient"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(plane)
    out = tmp_path / "out"
    assert main(["analyze", str(plane), "--out", str(out), "--wall", str(breach["wall"]), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    detector_mm = float(ds.ImagerPixelSpacing[0])
    assert summary["mm_per_px"] == pytest.approx(detector_mm) and "detector plane" in summary["calibration"]
    assert detector_mm > breach["sim"].run.mm_per_px * 1.05  # the phantom's magnification
    rows = read_rows(out / "frames.csv")
    assert {r["alert"] for r in rows} == {"unreliable", "warn", "stop"}  # never ok
    for r in rows:
        if r["front_to_wall_mm"]:
            assert float(r["front_to_wall_mm"]) == pytest.approx(float(r["front_to_wall_px"]) * detector_mm, rel=1e-4)
        if r["alert"] != "stop":  # the doubt in every frame's reasons
            assert r["reason"].endswith("magnification_unknown") and "ok" != r["alert"]
    # The stop is still on time: the breach's front reaches the stop distance on the truth's
    # first stop frame, read at 1.4 mm (the true 1.07 mm times the magnification).
    truth_stop = next(e["frame"] for e in breach["sim"].truth["events"] if e["level"] == "stop")
    first_stop = next(int(r["frame"]) for r in rows if r["alert"] == "stop")
    assert truth_stop - 4 <= first_stop <= truth_stop + 1
    assert all(r["alert"] == "stop" for r in rows[first_stop:])


def test_a_wall_drawn_with_anterior_and_posterior_swapped_is_never_ok_and_says_so(breach, analysed, tmp_path, capsys):
    """A mirrored WALL.json (anterior corners where the posterior ones are) measures the wrong
    wall: the needle, which enters through the posterior wall, says so. Every frame that does
    not stop carries needle_enters_anterior (warns on what it meets, else is unreliable), one
    line on stderr names the study and the reason, and cement leaving the body still stops."""
    assert json.loads((analysed / "summary.json").read_text())["needle_enters"] == "posterior"
    corners = json.loads(breach["wall"].read_text())["vertebral_body"]
    swap = {"anterior_superior": "posterior_superior", "posterior_superior": "anterior_superior",
            "posterior_inferior": "anterior_inferior", "anterior_inferior": "posterior_inferior"}
    mirrored = tmp_path / "WALL.json"
    mirrored.write_text(json.dumps({"frame": 0, "vertebral_body": {name: corners[swap[name]] for name in swap}}))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(mirrored), "--quiet"]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert "WALL.json calls anterior" in line and "needle_enters_anterior" in line
    assert json.loads((out / "summary.json").read_text())["needle_enters"] == "anterior"
    rows = read_rows(out / "frames.csv")
    assert {r["alert"] for r in rows} == {"unreliable", "warn", "stop"}  # never ok
    for r in rows:
        if r["alert"] != "stop":
            assert r["reason"].endswith("needle_enters_anterior")
    # The breach leaves the drawn outline on the frame the true wall's run first sees it leak.
    true_wall, swapped = (
        next(int(r["frame"]) for r in read_rows(folder / "frames.csv") if r["leak_classes"]) for folder in (analysed, out)
    )
    assert swapped == true_wall and all(r["alert"] == "stop" for r in rows[swapped:])


def test_a_wall_of_no_vertebral_body_s_size_is_never_ok_and_says_so(breach, tmp_path, capsys):
    """WALL.json drawn for another scale (here the true corners shrunk to a fifth about their
    centre: a body 9 mm deep) measures against walls no body has: one line on stderr says
    so, and every frame that does not stop carries body_size_implausible."""
    corners = json.loads(breach["wall"].read_text())["vertebral_body"]
    centre = np.mean(list(corners.values()), axis=0)
    small = {name: list(centre + (np.array(xy) - centre) / 5) for name, xy in corners.items()}
    wall = tmp_path / "WALL.json"
    wall.write_text(json.dumps({"frame": 0, "vertebral_body": small}))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(wall), "--quiet"]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert "no vertebral body's size" in line and "body_size_implausible" in line
    rows = read_rows(out / "frames.csv")
    assert "ok" not in {r["alert"] for r in rows}
    assert all(r["reason"].endswith("body_size_implausible") for r in rows if r["alert"] != "stop")
    assert any(r["alert"] != "stop" for r in rows)


def test_pixels_too_large_for_the_stop_distance_are_never_ok_and_say_so(breach, analysed, tmp_path, capsys):
    """The stop distance (2 mm) must span `reliability.min_stop_px` pixels (2): a front placed to
    the pixel may lie up to one nearer the wall than it reads. The breach's pixels held to a
    little more than they span (as a 64 px frame of 1.8 mm pixels is by the default): one line
    on stderr says so, every frame that does not stop carries pixels_too_coarse, and the frames
    that stop are those of the plain run."""
    config = tmp_path / "coarse.toml"
    config.write_text(f"[reliability]\nmin_stop_px = {2.0 / breach['sim'].run.mm_per_px * 1.05:.3f}\n")
    out = tmp_path / "out"
    capsys.readouterr()
    args = ["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--config", str(config)]
    assert main([*args, "--quiet"]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert "too large for the stop distance" in line and "pixels_too_coarse" in line
    rows, plain = read_rows(out / "frames.csv"), read_rows(analysed / "frames.csv")
    assert "ok" not in {r["alert"] for r in rows}
    assert [r["alert"] == "stop" for r in rows] == [r["alert"] == "stop" for r in plain]
    assert all(r["reason"].endswith("pixels_too_coarse") for r in rows if r["alert"] != "stop")
    assert any(r["alert"] != "stop" for r in rows)


def analysed_run(run, wall, folder: Path, capsys) -> tuple[dict, list[str]]:
    """``run`` written as legacy XA into ``folder`` and analysed with ``wall`` (quiet; exit status
    0): its summary.json, and the lines the analysis wrote on stderr."""
    folder.mkdir(parents=True, exist_ok=True)
    (dcm,) = write_dicom(run, folder / "study.dcm", obj="xa")
    capsys.readouterr()  # (the writer's own warnings)
    assert main(["analyze", str(dcm), "--out", str(folder / "out"), "--wall", str(wall), "--quiet"]) == 0
    return json.loads((folder / "out" / "summary.json").read_text()), capsys.readouterr().err.splitlines()


def test_a_run_that_begins_after_the_injection_says_its_cement_may_be_unseen(breach, analysed, tmp_path, capsys):
    """The breach's last 4 frames alone: its cement, already behind the wall, is in the run's
    first frames, which make the baseline; no pixel can tell it from bone. One warning line
    says so (the frames cannot be called unreliable: a run before any injection looks the
    same), and summary.json's first_cement_s says when cement was first seen."""
    import dataclasses

    run = breach["sim"].run
    late = dataclasses.replace(run, frames=run.frames[-4:], time_s=run.time_s[-4:] - run.time_s[-4])
    summary, (line,) = analysed_run(late, breach["wall"], tmp_path, capsys)
    assert "If the run began after the injection, the cement already in the body at its first frames" in line
    assert ("no cement was seen" in line) == (summary["first_cement_s"] is None)
    # The whole run shows its injection begin: no such warning, and first_cement_s is the
    # time of the first frame with cement.
    rows = read_rows(analysed / "frames.csv")
    first = next(r for r in rows if int(r["cement_area_px"]) > 0)
    summary = json.loads((analysed / "summary.json").read_text())
    assert summary["first_cement_s"] == pytest.approx(float(first["time_s"]))
    # Its baseline is its pre-injection frames, every one.
    assert summary["baseline_frames"] == SynthOptions().pre_injection_frames
    assert summary["baseline_left_out_frames"] == []


def test_a_run_whose_frames_before_the_cement_could_not_be_used_says_its_baseline_is_short(breach, tmp_path, capsys):
    """Frames 2 to 11 blank (the injection starts at the 6th): the first usable frame after
    them shows cement against the two before the gap, which are the baseline (that frame
    joined them before, and its cement was the baseline's: the breach never stopped). One
    warning line says the baseline is short, and summary.json how many frames it has."""
    import dataclasses

    run = breach["sim"].run
    frames = run.frames.copy()
    frames[2:12] = 2**run.bits_stored - 1 if run.photometric == "MONOCHROME1" else 0  # (blank: black)
    summary, (line,) = analysed_run(dataclasses.replace(run, frames=frames), breach["wall"], tmp_path, capsys)
    assert "against a baseline of 2 usable frame(s) before it, fewer than segmentation.baseline_frames_min (3)" in line
    assert summary["baseline_frames"] == 2
    # The stop within a frame of the truth's, and not before the true front was 4 mm from the wall.
    truth = breach["sim"].truth
    truth_stop = next(e["frame"] for e in truth["events"] if e["level"] == "stop")
    ours = round(summary["first_stop_s"] * run.fps)
    assert ours <= truth_stop + 1 and truth["frames"][ours]["front_to_wall_mm"] <= 4.0


def test_a_pre_injection_frame_shifted_in_part_is_left_out_of_the_baseline_and_named(breach, analysed, tmp_path, capsys):
    """Frame 2's rows below the middle 2 px sideways (a decoder that lost its place): too little
    for the check as the frame comes, found when the baseline is made against the other four
    (tests/engine/test_baseline_mismatch.py). One warning line names the frame, summary.json
    lists it, and the run reads as the one whose frame 2 could not be used."""
    import dataclasses

    run = breach["sim"].run
    frames = run.frames.copy()
    frames[2, 128:] = np.roll(frames[2, 128:], 2, axis=1)
    shifted = dataclasses.replace(run, frames=frames)
    summary, (line,) = analysed_run(shifted, breach["wall"], tmp_path / "shifted", capsys)
    assert "frame(s) 2 left out of the pre-injection baseline: part of each did not match the other frames" in line
    assert "the mean of the 4 others" in line
    assert (summary["baseline_frames"], summary["baseline_left_out_frames"]) == (4, [2])
    # The same stop as the frame blank (its baseline the same four frames) and the plain run; before,
    # the shifted frame in the baseline stopped two frames later (5.6 s against 5.2).
    frames[2] = 2**run.bits_stored - 1  # (MONOCHROME1: blank is white)
    expected, _ = analysed_run(dataclasses.replace(run, frames=frames), breach["wall"], tmp_path / "blank", capsys)
    assert (expected["baseline_frames"], expected["baseline_left_out_frames"]) == (4, [])
    plain = json.loads((analysed / "summary.json").read_text())
    assert summary["first_stop_s"] == expected["first_stop_s"] == plain["first_stop_s"]


def test_wall_corners_off_the_image_are_refused(breach, tmp_path, capsys):
    wall = json.loads(Path(breach["wall"]).read_text())
    size = breach["sim"].run.frames.shape[2]
    wall["vertebral_body"]["posterior_superior"] = [size + 20.0, 40.0]  # (columns: x)
    path = tmp_path / "WALL.json"
    path.write_text(json.dumps(wall))
    assert main(["analyze", str(breach["dcm"]), "--out", str(tmp_path / "out"), "--wall", str(path)]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"vpimage: error: {breach['dcm']}: WALL.json {path}: corners off the {size} x {size} px image")
    assert f"posterior_superior ({size + 20}, 40)" in line
    assert "anterior_superior" not in line  # (the corners inside are not listed)


@pytest.mark.parametrize("kind", ["missing", "garbage", "no_light", "bad_wall", "latin1_wall", "deep_wall",
                                  "string_corners_wall", "latin1_config"])
def test_bad_input_exits_3_with_one_line_naming_the_file(kind, breach, tmp_path, capsys):
    source, extra, named = str(breach["dcm"]), [], None
    if kind == "missing":
        source = str(tmp_path / "nothing.dcm")
    elif kind == "no_light":  # a rescale under which every value is below 0
        ds = pydicom.dcmread(source)
        ds.RescaleIntercept, ds.RescaleSlope = "-70000", "1"
        source = str(tmp_path / "no_light.dcm")
        ds.save_as(source)
    elif kind == "garbage":
        source = str(tmp_path / "garbage.dcm")
        Path(source).write_bytes(b"not a dicom file at all" * 10)
    elif kind.endswith("wall"):
        named = tmp_path / "WALL.json"
        named.write_bytes({
            "bad_wall": b'{"frame": 0, "vertebral_body": {"anterior_superior": [1, 2]}}',
            "latin1_wall": b'{"frame": 0, "vertebral_body": {"\xe9": 1}}',  # Latin-1, not UTF-8
            "deep_wall": b"[" * 100_000 + b"]" * 100_000,  # (json recurses)
            "string_corners_wall": json.dumps({"frame": 0, "vertebral_body": dict.fromkeys(
                ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior"), "31")}).encode(),
        }[kind])
        extra = ["--wall", str(named)]
    else:
        named = tmp_path / "config.toml"
        named.write_bytes(b"# r\xe9glages\n[alerts]\nwarn_mm = 6.0\n")
        extra = ["--config", str(named)]
    argv = ["analyze", source, "--out", str(tmp_path / "out")] + extra
    assert main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(named or source) in err[0]


def test_a_study_that_fails_does_not_stop_the_others(breach, tmp_path, capsys):
    garbage, truncated = tmp_path / "garbage.dcm", tmp_path / "truncated.dcm"
    garbage.write_bytes(b"not a dicom file at all" * 10)
    truncated.write_bytes(Path(breach["dcm"]).read_bytes()[:5000])  # the header, a little of the pixels
    out = tmp_path / "out"
    argv = ["analyze", str(garbage), str(breach["dcm"]), str(truncated), "--out", str(out), "--wall", str(breach["wall"])]
    assert main(argv) == 3
    captured = capsys.readouterr()
    # The good study between the two bad ones was analysed in full, as alone.
    rows = read_rows(out / "breach" / "frames.csv")
    assert len(rows) == breach["sim"].run.frames.shape[0]
    assert json.loads((out / "breach" / "summary.json").read_text())["max_alert"] == "stop"
    assert "breach.dcm" in captured.out
    # One line on stderr names both failures and their reasons; nothing was written for them.
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("vpimage: error: 2 of 3 studies failed") and "garbage.dcm" in line and "truncated.dcm" in line
    assert sorted(p.name for p in out.iterdir()) == ["breach"]  # and no folder is left for them
    # All of them failing: none was analysed, and the line says so.
    assert main(["analyze", str(garbage), str(truncated), "--out", str(tmp_path / "none")]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vpimage: error: 2 of 2 studies failed, none was analysed: ")


def test_a_study_whose_outputs_cannot_be_written_does_not_stop_the_others(breach, tmp_path, capsys):
    # A file stands where the first study's folder would go. (The run stopped there: the
    # second study was never analysed, and the line did not say so.)
    first = tmp_path / "first.dcm"
    first.write_bytes(Path(breach["dcm"]).read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "first").write_text("in the way")
    argv = ["analyze", str(first), str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--quiet"]
    assert main(argv) == 1  # (only outputs that cannot be written: CONTRACT.md "1 anything else")
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vpimage: error: 1 of 2 studies failed, the others were analysed: ")
    assert str(out / "first") in line
    assert json.loads((out / "breach" / "summary.json").read_text())["max_alert"] == "stop"
    assert (out / "first").read_text() == "in the way"


def test_an_input_spelled_dot_dot_writes_into_a_subfolder_of_out(breach, tmp_path, capsys, monkeypatch):
    # ``..`` named its subfolder ``out/..``: the results went into out's parent (the working
    # folder here), where an evaluation.json of the user's was removed.
    study = tmp_path / "study"
    study.mkdir()
    (study / "0001.dcm").write_bytes(Path(breach["dcm"]).read_bytes())
    work = study / "work"
    work.mkdir()
    (work / "evaluation.json").write_text("the user's")
    monkeypatch.chdir(work)
    argv = ["analyze", "..", str(breach["dcm"]), "--out", "out", "--wall", str(breach["wall"]), "--quiet"]
    assert main(argv) == 0
    assert sorted(p.name for p in (work / "out").iterdir()) == ["breach", "study"]
    assert (work / "out" / "study" / "summary.json").exists()
    assert sorted(p.name for p in work.iterdir()) == ["evaluation.json", "out"]
    assert (work / "evaluation.json").read_text() == "the user's"


@pytest.mark.parametrize("option", ["--out", "--wall", "--config"])
def test_an_empty_path_option_is_refused(breach, tmp_path, capsys, monkeypatch, option):
    # As an unset shell variable gives it. ``--out ''`` wrote into the working folder, ``--wall ''``
    # found the corners automatically and ``--config ''`` used the defaults, each exit 0.
    monkeypatch.chdir(tmp_path)
    paths = {"--out": str(tmp_path / "out"), "--wall": str(breach["wall"]), "--config": None, option: ""}
    argv = ["analyze", str(breach["dcm"])] + [word for key, value in paths.items() if value is not None
                                               for word in (key, value)]
    assert main(argv) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"vpimage: error: `{option}` is empty: it names no file or folder"
    assert list(tmp_path.iterdir()) == []


def _contents(folder: Path) -> dict:
    return {p.name: p.read_bytes() if p.is_file() else None for p in folder.iterdir()}


def test_a_rerun_that_fails_writing_leaves_the_earlier_result_set_as_it_was(breach, tmp_path, capsys):
    # (The rerun's frames.csv had replaced the earlier one, and the earlier summary was gone.)
    out = tmp_path / "out"
    argv = ["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--quiet"]
    assert main(argv) == 0 and (out / "summary.json").exists()
    (out / "config.toml").unlink()
    (out / "config.toml").mkdir()  # the rerun cannot write its config.toml
    (out / "frames.csv").write_text("the earlier run's")
    earlier = _contents(out)
    assert main(argv) == 1
    assert "config.toml" in capsys.readouterr().err
    assert _contents(out) == earlier  # (no temporary file left either)


def test_a_rerun_interrupted_while_writing_leaves_the_earlier_result_set_as_it_was(breach, tmp_path, capsys,
                                                                                   monkeypatch):
    # Ctrl-C while the overlay was written had left the rerun's frames.csv, events.json,
    # masks.npz and config.toml over the earlier run's, and no summary.
    import vpimage.outputs

    out = tmp_path / "out"
    argv = ["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--quiet", "--overlay"]
    assert main(argv) == 0
    (out / "frames.csv").write_text("the earlier run's")
    earlier = _contents(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vpimage.outputs, "write_timeline_png", interrupted)  # (after the overlay, last but one)
    assert main(argv) == 1
    assert capsys.readouterr().err.endswith("vpimage: interrupted\n")
    assert _contents(out) == earlier


def test_a_stale_summary_that_cannot_be_removed_exits_1_naming_it(breach, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "summary.json").mkdir(parents=True)  # not a file: it cannot be unlinked
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"])]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(out / "summary.json") in line and "cannot be removed" in line
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # nothing written beside it


@pytest.mark.parametrize("existing", [False, True])
def test_a_run_stopped_by_a_bad_option_leaves_no_folder_it_made(breach, tmp_path, capsys, existing):
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    argv = ["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--backend", "numpy",
            "--device", "cuda"]
    assert main(argv) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "numpy backend runs on the cpu only" in line
    assert out.exists() == existing and (not existing or not any(out.iterdir()))


@pytest.mark.parametrize("existing", [False, True])
def test_a_study_that_fails_leaves_no_folder_the_run_made(breach, tmp_path, capsys, existing):
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(Path(breach["dcm"]).read_bytes()[:5000])
    out = tmp_path / "out"
    if existing:
        out.mkdir()  # the user's own (empty) folder is kept
    assert main(["analyze", str(truncated), "--out", str(out), "--wall", str(breach["wall"])]) == 3
    assert "truncated.dcm" in capsys.readouterr().err
    assert out.exists() == existing and (not existing or not any(out.iterdir()))


def test_one_failure_among_several_says_the_others_were_analysed(breach, tmp_path, capsys):
    # (It was reported as itself alone, as if the run had stopped there.)
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"not a dicom file at all" * 10)
    argv = ["analyze", str(breach["dcm"]), str(garbage), "--out", str(tmp_path / "out"), "--wall", str(breach["wall"])]
    assert main(argv) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vpimage: error: 1 of 2 studies failed, the others were analysed: ")
    assert str(garbage) in line
    assert (tmp_path / "out" / "breach" / "summary.json").exists()


def test_a_rerun_leaves_no_output_of_the_earlier_run_it_does_not_write_again(breach, tmp_path, capsys):
    # An earlier run's overlay and timeline, and its evaluation, stayed beside the rerun's
    # results (another study's, here): they described another analysis.
    out = tmp_path / "out"
    wall = ["--wall", str(breach["wall"]), "--quiet"]
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--overlay", *wall]) == 0
    assert main(["evaluate", str(out), str(breach["truth"])]) == 0
    capsys.readouterr()
    written = {"frames.csv", "events.json", "summary.json", "masks.npz", "config.toml"}
    assert {p.name for p in out.iterdir()} == written | {"overlay.mp4", "timeline.png", "evaluation.json"}
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), *wall]) == 0
    assert {p.name for p in out.iterdir()} == written
    (out / "notes.txt").write_text("mine")  # what is not vpimage's stays
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--overlay", *wall]) == 0
    assert {p.name for p in out.iterdir()} == written | {"overlay.mp4", "timeline.png", "notes.txt"}


def test_ctrl_c_is_one_line_and_exit_1_not_a_traceback(breach, tmp_path, capsys, monkeypatch):
    import vpimage.cli.analyze

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vpimage.cli.analyze, "analyze_study", interrupted)
    assert main(["analyze", str(breach["dcm"]), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == "vpimage: interrupted\n"
    assert not (tmp_path / "out").exists()  # the folder the run made is gone


def test_wg04_angiogram_is_unreliable_never_ok_or_stop(tmp_path, monkeypatch):
    # A real angiogram: contrast-filled vessels, no needle, no body, no calibration. It
    # stores 10 bits with its brightest pixel at 502: the engine reads it at the header's
    # white level (1023), not at a guess from the pixels (511).
    import vpimage.engine

    white_levels = []

    class RecordingEngine(vpimage.engine.Engine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            white_levels.append(self.white_level)

    monkeypatch.setattr(vpimage.engine, "Engine", RecordingEngine)
    wall = tmp_path / "WALL.json"
    wall.write_text(json.dumps({"frame": 0, "vertebral_body": {
        "anterior_superior": [300, 400], "posterior_superior": [700, 400],
        "posterior_inferior": [700, 650], "anterior_inferior": [300, 650]}}))
    for extra in ([], ["--wall", str(wall)]):
        out = tmp_path / f"out{len(extra)}"
        assert main(["analyze", str(WG04), "--out", str(out), "--quiet"] + extra) == 0
        rows = read_rows(out / "frames.csv")
        assert rows and {r["alert"] for r in rows} == {"unreliable"}
        summary = json.loads((out / "summary.json").read_text())
        assert summary["max_alert"] == "unreliable" and summary["first_stop_s"] is None
        assert summary["mm_per_px"] is None or not math.isfinite(summary["mm_per_px"])
    assert white_levels == [1023.0, 1023.0]


@pytest.mark.parametrize("frame", [-1, True, 1.5, "3", None, [0]])
def test_a_wall_frame_that_is_not_a_frame_index_exits_3_naming_the_wall_file(frame, breach, tmp_path, capsys):
    wall = json.loads(Path(breach["wall"]).read_text())
    wall["frame"] = frame
    path = tmp_path / "corners.json"  # (not called WALL.json: the line must name this very file)
    path.write_text(json.dumps(wall))
    out = tmp_path / "out"
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(path)]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f'vpimage: error: {path}: "frame" must be a frame index >= 0; got {frame!r}'
    assert not out.exists()  # refused before any output was made


def test_read_wall_takes_a_frame_index_and_frame_0_when_there_is_none(breach, tmp_path):
    from vpimage.cli.analyze import read_wall

    wall = json.loads(Path(breach["wall"]).read_text())
    path = tmp_path / "WALL.json"
    path.write_text(json.dumps(dict(wall, frame=7)))
    assert read_wall(path)["frame"] == 7
    del wall["frame"]
    path.write_text(json.dumps(wall))
    read = read_wall(path)
    assert read["frame"] == 0
    for name, point in wall["vertebral_body"].items():
        assert read["corners"].to_dict()[name] == pytest.approx(point)


def test_a_wall_frame_beyond_the_study_exits_3_and_its_last_frame_is_taken(breach, tmp_path, capsys):
    n = breach["sim"].run.frames.shape[0]
    wall = json.loads(Path(breach["wall"]).read_text())
    path = tmp_path / "WALL.json"
    path.write_text(json.dumps(dict(wall, frame=n)))
    out = tmp_path / "out"
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(path)]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"vpimage: error: {breach['dcm']}: WALL.json {path}: frame {n} is beyond the study's {n} frames"
    assert not (out / "frames.csv").exists() and not (out / "summary.json").exists()
    # Its last frame (n - 1) is a frame of the study.
    path.write_text(json.dumps(dict(wall, frame=n - 1)))
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(path), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["wall_frame"] == n - 1


def test_a_wall_drawn_on_a_later_frame_measures_as_the_same_body_drawn_on_frame_0(breach, analysed, tmp_path):
    """The corners as they lie on a later frame (the truth's corners moved by the phantom's
    motion at that frame) are moved onto the first frame by the registration of that frame
    before the analysis starts: every frame is measured as with the frame-0 corners."""
    sim = breach["sim"]
    mm_per_px = sim.run.mm_per_px
    offsets_px = np.array(sim.truth["motion"]["offsets_mm"]) / mm_per_px  # [frames, (x, y)], frame 0 at 0
    # The frame of the most sideways motion before the breach: the wall line is near vertical,
    # so a sideways misplacement is what moves front_to_wall.
    frame = int(np.argmax(np.abs(offsets_px[:20, 0])))
    shift = offsets_px[frame]
    assert frame > 0 and abs(shift[0]) >= 0.5  # drawn there, the corners lie half a pixel aside or more
    corners = {name: (np.asarray(point) + shift).tolist() for name, point in sim.truth["vertebral_body"].items()}
    path = tmp_path / "WALL.json"
    path.write_text(json.dumps({"frame": frame, "vertebral_body": corners}))
    out = tmp_path / "out"
    assert main(["analyze", str(breach["dcm"]), "--out", str(out), "--wall", str(path), "--quiet"]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_frame"] == frame and summary["wall_source"] == "annotation"
    for name, point in corners.items():
        assert summary["wall"][name] == pytest.approx(point)  # the corners as given
    later, first = read_rows(out / "frames.csv"), read_rows(analysed / "frames.csv")
    assert len(later) == len(first) == sim.run.frames.shape[0]
    # The registration's estimate of that frame's motion is sub-pixel: on every frame, before
    # the one drawn on too, the same alert and the front within 0.05 px of the frame-0 run's.
    # Corners left where they were drawn would be |shift x| >= 0.5 px off until that frame,
    # and the regions placed by the body (where motion is measured, the leak channel's outline)
    # off for the whole run, which changed two frames' alerts.
    assert [r["alert"] for r in later] == [r["alert"] for r in first]
    for was, now in zip(first, later):
        assert (was["front_to_wall_px"] == "") == (now["front_to_wall_px"] == "")
        if was["front_to_wall_px"]:
            assert float(now["front_to_wall_px"]) == pytest.approx(float(was["front_to_wall_px"]), abs=0.05)
    ours, _ = read_masks_npz(out / MASKS_FILE)
    theirs, _ = read_masks_npz(analysed / MASKS_FILE)
    assert (ours ^ theirs).sum() <= 0.001 * theirs.sum()


@pytest.mark.parametrize("frame_k", ["as acquired", "blank"])
def test_corners_go_to_the_first_frame_only_when_their_frame_registers(breach, frame_k):
    """A WALL frame that registers gives corners on frame 0 within 0.05 px of the truth's;
    one that cannot (a blank frame) gives the corners back as drawn, still tied to their
    frame, so that the engine moves them by the first usable frame from there on."""
    sim, frame = breach["sim"], 13
    run = sim.run
    frames = (2**run.bits_stored - 1) - run.frames.astype(np.float32)  # as ingested: MONOCHROME1 inverted
    if frame_k == "blank":
        frames[frame] = 0
    on_first = Corners.from_dict(sim.truth["vertebral_body"])
    offset_px = np.array(sim.truth["motion"]["offsets_mm"][frame]) / run.mm_per_px  # (x, y)
    drawn = on_first.translated(*offset_px)
    assert np.abs(offset_px).max() > 2  # the frame is well away from frame 0

    def make_engine(corners, corners_frame):
        return Engine(
            RunConfig.defaults(), rows=frames.shape[1], columns=frames.shape[2], mm_per_px=run.mm_per_px,
            fov_mask=run.field.mask(*frames.shape[1:]), corners=corners, corners_frame=corners_frame,
            white_level=2**run.bits_stored - 1,
        )

    study = SimpleNamespace(frame=lambda i: frames[i], timing=SimpleNamespace(time_s=run.time_s), key="k")
    corners, corners_frame = _on_first_frame(study, "study.dcm", drawn, frame, make_engine)
    if frame_k == "blank":
        assert (corners, corners_frame) == (drawn, frame)
    else:
        assert corners_frame == 0
        np.testing.assert_allclose(corners.as_array(), on_first.as_array(), atol=0.05)


def with_a_black_frame(breach, frame: int, path: Path) -> Path:
    """The breach's DICOM with ``frame`` black (no exposure: MONOCHROME1's top stored value)."""
    run = breach["sim"].run
    frames = run.frames.copy()
    frames[frame] = 2**run.bits_stored - 1
    (written,) = write_dicom(dataclasses.replace(run, frames=frames), path, obj="xa")
    return written


def test_a_wall_drawn_on_a_frame_that_cannot_be_registered_is_never_measured_ok(breach, tmp_path, capsys):
    """The last frame black and WALL.json drawn on it: no frame from there on could place the
    corners, and every frame was measured against them as drawn, ok or warn, without a word."""
    sim, last = breach["sim"], breach["sim"].run.frames.shape[0] - 1
    dcm = with_a_black_frame(breach, last, tmp_path / "black_end.dcm")
    offset_px = np.array(sim.truth["motion"]["offsets_mm"][last]) / sim.run.mm_per_px
    corners = {name: (np.asarray(point) + offset_px).tolist() for name, point in sim.truth["vertebral_body"].items()}
    wall = tmp_path / "WALL.json"
    wall.write_text(json.dumps({"frame": last, "vertebral_body": corners}))
    assert main(["analyze", str(dcm), "--out", str(tmp_path / "out"), "--wall", str(wall)]) == 0
    err = capsys.readouterr().err
    assert f"WALL.json's frame {last} cannot be registered (saturated_or_empty_frame)" in err
    rows = read_rows(tmp_path / "out" / "frames.csv")
    assert {r["alert"] for r in rows} == {"unreliable"}
    assert {r["reason"] for r in rows[:last]} == {"wall_not_placed"}


def test_a_black_first_frame_fails_its_study_alone_naming_its_file(breach, tmp_path, capsys):
    # (The engine's refusal came out without the file's name, and the other studies were not analysed.)
    dcm = with_a_black_frame(breach, 0, tmp_path / "black_start.dcm")
    capsys.readouterr()  # (what writing it logged)
    out = tmp_path / "out"
    argv = ["analyze", str(dcm), str(breach["dcm"]), "--out", str(out), "--wall", str(breach["wall"]), "--quiet"]
    assert main(argv) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vpimage: error: 1 of 2 studies failed, the others were analysed: ")
    assert f"{dcm}: frame 0 has no finite exposed value above 0" in line
    assert sorted(p.name for p in out.iterdir()) == ["breach"]
    assert json.loads((out / "breach" / "summary.json").read_text())["max_alert"] == "stop"


def test_data_under_a_wider_stored_range_are_never_ok_and_it_is_said_once(breach, tmp_path, capsys):
    """The breach's 12-bit MONOCHROME1 pixels under a header of 16 bits stored: inverted at
    65535, they span 1/16 of the white level and every contrast reads 16 times too small.
    The warning names the study, once, though WALL.json's later frame is registered first
    by a second engine."""
    ds = pydicom.dcmread(breach["dcm"])
    ds.BitsStored, ds.HighBit = 16, 15
    dcm = tmp_path / "wide.dcm"
    ds.save_as(dcm)
    sim = breach["sim"]
    offset_px = np.array(sim.truth["motion"]["offsets_mm"][5]) / sim.run.mm_per_px
    wall = tmp_path / "WALL.json"
    wall.write_text(json.dumps({"frame": 5, "vertebral_body": {
        name: (np.asarray(point) + offset_px).tolist() for name, point in sim.truth["vertebral_body"].items()}}))
    assert main(["analyze", str(dcm), "--out", str(tmp_path / "out"), "--wall", str(wall), "--quiet"]) == 0
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "white_level_unreached" in line]
    assert "study " in line and "white level 65535" in line
    rows = read_rows(tmp_path / "out" / "frames.csv")
    assert "ok" not in {r["alert"] for r in rows}
    assert {r["reason"] for r in rows if r["alert"] == "unreliable"} <= {"white_level_unreached", "motion_not_tracked"}


def test_inputs_of_the_same_name_get_distinct_folders(breach, tmp_path, capsys):
    # Two studies called breach.dcm in different folders (the second turned oblique, to tell
    # them apart), and a third whose own name is what the second's unique name would be.
    first, second, third = tmp_path / "a" / "breach.dcm", tmp_path / "b" / "breach.dcm", tmp_path / "c" / "breach_2.dcm"
    for path in (first, second, third):
        path.parent.mkdir()
    first.write_bytes(Path(breach["dcm"]).read_bytes())
    third.write_bytes(Path(breach["dcm"]).read_bytes())
    ds = pydicom.dcmread(breach["dcm"])
    ds.PositionerPrimaryAngle = "45"
    ds.save_as(second)
    out = tmp_path / "out"
    argv = ["analyze", str(first), str(second), str(third), "--out", str(out), "--wall", str(breach["wall"])]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["breach", "breach_2", "breach_2_2"]
    views = {name: json.loads((out / name / "summary.json").read_text())["view"] for name in ("breach", "breach_2", "breach_2_2")}
    assert views == {"breach": "lateral", "breach_2": "oblique", "breach_2_2": "lateral"}
    n = breach["sim"].run.frames.shape[0]
    assert all(len(read_rows(out / name / "frames.csv")) == n for name in views)
    printed = capsys.readouterr().out.strip().splitlines()
    assert [line.rsplit(" -> ", 1)[1] for line in printed] == [str(out / name) for name in ("breach", "breach_2", "breach_2_2")]


@pytest.mark.parametrize("quiet", [True, False])
def test_a_series_member_that_cannot_be_read_is_kept_in_the_summary(breach, tmp_path, capsys, quiet):
    folder = tmp_path / "series"
    write_dicom(breach["sim"].run, folder, obj="xa-series")
    cut = folder / "0005.dcm"
    cut.write_bytes(cut.read_bytes()[:-1000])  # truncated in its pixel data
    out = tmp_path / "out"
    capsys.readouterr()  # what writing the series logged is not the run's
    argv = ["analyze", str(folder), "--out", str(out), "--wall", str(breach["wall"])] + (["--quiet"] if quiet else [])
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    (skipped,) = summary["skipped_files"]
    assert skipped.startswith("0005.dcm (") and "truncated" in skipped
    assert summary["frames"] == breach["sim"].run.frames.shape[0] - 1
    captured = capsys.readouterr()
    if quiet:  # nothing but errors on the terminal: summary.json is where it is kept
        assert (captured.out, captured.err) == ("", "")
    else:
        assert "1 file(s) skipped" in captured.out and "0005.dcm" in captured.err
