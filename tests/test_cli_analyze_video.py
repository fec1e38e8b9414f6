"""`vpimage analyze` on a video (OpenCV): the frames are measured in pixels, and with no
calibration every frame is `unreliable` (`no_calibration`), never `ok` (CONTRACT.md)."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from vpimage.cli import main
from vpimage.synth import SynthOptions, simulate


@pytest.mark.parametrize("given", ["file", "folder"])
def test_a_video_of_a_breach_is_measured_in_px_and_never_ok(tmp_path, given):
    # Given as the video's file, or as a folder holding only it (a study folder, as CONTRACT.md
    # allows: it was refused as holding no readable DICOM image).
    sim = simulate("posterior_breach", seed=5, options=SynthOptions(size_px=256))
    run, top = sim.run, 2**sim.run.bits_stored - 1
    (tmp_path / "vdir").mkdir()
    video = tmp_path / "vdir" / "breach.avi"  # FFV1: lossless, so the 8-bit frames are the run's, requantised
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 5.0, (256, 256), isColor=False)
    for frame in run.frames:
        writer.write(np.rint(frame / top * 255).astype(np.uint8))
    writer.release()
    wall = sim.save_wall(tmp_path / "WALL.json")

    source = video if given == "file" else video.parent
    assert main(["analyze", str(source), "--out", str(tmp_path / "out"), "--wall", str(wall), "--quiet"]) == 0
    with open(tmp_path / "out" / "frames.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(run.frames)
    np.testing.assert_allclose([float(r["time_s"]) for r in rows], np.arange(len(rows)) / 5.0, atol=1e-3)
    assert {(r["alert"], r["reason"]) for r in rows} == {("unreliable", "no_calibration")}
    assert all(r["front_to_wall_mm"] == "" for r in rows)
    # The front is found in pixels all the same: against the truth's, in the frames with cement
    # in the body, a median error under 1.5 px (the phantom's own DICOM is scored in mm).
    truth = [f["front_to_wall_mm"] for f in sim.truth["frames"]]
    errors = [abs(float(r["front_to_wall_px"]) - t / run.mm_per_px) for r, t in zip(rows, truth) if t is not None]
    assert len(errors) == sum(t is not None for t in truth) > 20
    assert np.median(errors) < 1.5, np.median(errors)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mm_per_px"] is None and summary["max_alert"] == "unreliable" and summary["first_stop_s"] is None
    assert summary["input"] == source.name
