"""``vpimage synth``: each imaging and writing option reaches the file, the frames or the truth.

Every case runs the command line with one option (and the same seed, size and clip) and
checks it against what that option must do: a header value written out by hand, the
pixels of the same run without the option, or the phantom's own truth (motion, geometry).
Options that cannot be met are refused before the simulation, and the files are written as
a set: all of them, or none (any old file at those paths left as it was).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from vpimage.cli import main

SCENARIO = "no_leak"
# Small and short: 12 frames at 5 fps (5 pre-injection frames), 64 px, seed 1.
CLIP = ["--size", "64", "--frames", "12", "--seed", "1"]
CORNERS = ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior")


def _synth(folder: Path, *flags: str):
    """Run ``vpimage synth`` with ``flags``; return (the written DICOM path, the truth dict)."""
    out, truth = folder / "run.dcm", folder / "truth.json"
    assert main(["synth", SCENARIO, "--out", str(out), "--truth", str(truth), *CLIP, *flags]) == 0
    return out, json.loads(truth.read_text())


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The same run without any of the options: (dataset, truth)."""
    out, truth = _synth(tmp_path_factory.mktemp("base"))
    return pydicom.dcmread(out), truth


def _corner_array(corners: dict) -> np.ndarray:
    return np.array([corners[name] for name in CORNERS])


def _edge_angle_deg(corners: dict) -> float:
    """Angle of the superior endplate (anterior -> posterior corner) in the image, degrees."""
    (x0, y0), (x1, y1) = _corner_array(corners)[:2]
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))


def _pixel_noise(frames: np.ndarray) -> float:
    """Robust sigma of the frame-to-frame differences of the five pre-injection frames, central quarter."""
    n = frames.shape[-1]
    centre = frames[:5, n // 4 : 3 * n // 4, n // 4 : 3 * n // 4].astype(np.float64)
    d = np.diff(centre, axis=0).ravel()
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


# One checker per option: (out, truth, base) -> asserts.


def _check_tilt(out, truth, base):
    # The same anatomy turned by the tilt in the image: the endplate's angle moves by 17
    # degrees and the body keeps its shape (the corners' distances are those untilted).
    _, base_truth = base
    turned = _edge_angle_deg(truth["vertebral_body"]) - _edge_angle_deg(base_truth["vertebral_body"])
    assert turned == pytest.approx(17.0, abs=1e-6)
    a, b = _corner_array(truth["vertebral_body"]), _corner_array(base_truth["vertebral_body"])
    np.testing.assert_allclose(
        np.linalg.norm(a[:, None] - a[None], axis=-1), np.linalg.norm(b[:, None] - b[None], axis=-1), atol=1e-9
    )
    assert not np.allclose(a, b, atol=1.0)


def _check_dose(out, truth, base):
    # Low dose: 1e5 quanta per pixel before the patient (12 times fewer than normal), so
    # the pixel noise of the log display grows by about sqrt(12) = 3.5 (3.0 measured here,
    # where breathing adds to the frame-to-frame differences of both).
    base_ds, _ = base
    assert truth["display"]["n0"] == 1.0e5
    assert _pixel_noise(pydicom.dcmread(out).pixel_array) > 2.0 * _pixel_noise(base_ds.pixel_array)


def _check_photometric(out, truth, base):
    # MONOCHROME1 stores the same run inverted: 4095 - the MONOCHROME2 value, everywhere.
    base_ds, _ = base
    ds = pydicom.dcmread(out)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_array_equal(ds.pixel_array.astype(np.int32), 4095 - base_ds.pixel_array.astype(np.int32))


def _check_bits(out, truth, base):
    # 10 bits stored: header values, and the same display window in 1023 steps instead of
    # 4095 (each value within rounding of the 12-bit one scaled by 1023 / 4095).
    base_ds, _ = base
    ds = pydicom.dcmread(out)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 10, 9)
    frames = ds.pixel_array.astype(np.int64)
    assert frames.max() <= 1023 and frames.max() > 511
    scaled = np.rint(base_ds.pixel_array * (1023 / 4095)).astype(np.int64)
    assert np.abs(frames - scaled).max() <= 1


def _check_no_breathing(out, truth, base):
    # Without breathing the patient does not move: no offset, the same corners every frame.
    _, base_truth = base
    assert np.abs(base_truth["motion"]["offsets_mm"]).max() > 0.1  # (the run breathes by default)
    assert np.abs(truth["motion"]["offsets_mm"]).max() == 0.0
    assert truth["motion"]["sudden_shift_frame"] is None
    for record in truth["frames"]:
        assert record["vertebral_body"] == truth["vertebral_body"]


def _check_sudden_shift(out, truth, base):
    # One jump of 3-6 mm at a frame of the injection (frames 7-10 of 12 here), on top of a
    # breathing of at most 2 mm * 2 pi / 3 s / 5 fps = 0.84 mm per frame; the frames
    # before it are the run without the shift, pixel for pixel, the ones from it are not.
    base_ds, _ = base
    k = truth["motion"]["sudden_shift_frame"]
    assert k is not None and 7 <= k <= 10
    steps = np.linalg.norm(np.diff(np.array(truth["motion"]["offsets_mm"]), axis=0), axis=1)
    assert 3.0 - 0.84 <= steps[k - 1] <= 6.0 + 0.84
    assert np.delete(steps, k - 1).max() <= 0.84
    frames = pydicom.dcmread(out).pixel_array
    np.testing.assert_array_equal(frames[:k], base_ds.pixel_array[:k])
    assert (frames[k:] != base_ds.pixel_array[k:]).any(axis=(1, 2)).all()


def _check_jitter(out, truth, base):
    # Jittered times are written as a Frame Time Vector (0, then each interval, ms), the
    # intervals within 200 ms +- 2 * 20 % and not all equal; the regular run has Frame Time.
    base_ds, _ = base
    assert base_ds.FrameTime == 200.0 and "FrameTimeVector" not in base_ds
    ds = pydicom.dcmread(out)
    assert "FrameTime" not in ds and ds.FrameIncrementPointer == pydicom.tag.Tag(0x0018, 0x1065)
    vector = np.array([float(v) for v in ds.FrameTimeVector])
    assert vector.shape == (12,) and vector[0] == 0.0
    assert np.all((vector[1:] >= 120.0) & (vector[1:] <= 280.0)) and np.ptp(vector[1:]) > 1.0
    times_ms = [1000.0 * record["time_s"] for record in truth["frames"]]
    np.testing.assert_allclose(np.cumsum(vector), times_ms, atol=1e-5)


def _check_view(out, truth, base):
    # The C-arm's primary angle: 0 degrees for AP, 90 for lateral.
    base_ds, _ = base
    ds = pydicom.dcmread(out)
    assert base_ds.PositionerPrimaryAngle == 90.0
    assert ds.PositionerPrimaryAngle == 0.0 and ds.PositionerSecondaryAngle == 0.0
    assert truth["view"] == "ap"


def _syntax_check(uid: str):
    def check(out, truth, base):
        # Lossless syntaxes: the header names it, the pixels are the default run's.
        base_ds, _ = base
        ds = pydicom.dcmread(out)
        assert ds.file_meta.TransferSyntaxUID == uid
        np.testing.assert_array_equal(ds.pixel_array, base_ds.pixel_array)

    return check


def _object_check(sop_class: str, modality: str):
    def check(out, truth, base):
        base_ds, _ = base
        ds = pydicom.dcmread(out)
        assert ds.SOPClassUID == sop_class and ds.file_meta.MediaStorageSOPClassUID == sop_class
        assert ds.Modality == modality and int(ds.NumberOfFrames) == 12
        np.testing.assert_array_equal(ds.pixel_array, base_ds.pixel_array)

    return check


def _check_series(out, truth, base):
    # A folder of single-frame XA instances 0001.dcm ... 0012.dcm, frame i in file i + 1.
    base_ds, _ = base
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{i:04d}.dcm" for i in range(1, 13)]
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.12.1" and ds.InstanceNumber == i + 1
        assert "NumberOfFrames" not in ds
        np.testing.assert_array_equal(ds.pixel_array, base_ds.pixel_array[i])


def _check_sc(out, truth, base):
    # Secondary capture: its own SOP class, modality OT, calibrated at the isocentre.
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3" and ds.Modality == "OT"
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([truth["mm_per_px"]] * 2, rel=1e-12)
    assert "ImagerPixelSpacing" not in ds


_GEOMETRY_KEYWORDS = (
    "ImagerPixelSpacing",
    "PixelSpacing",
    "DistanceSourceToDetector",
    "DistanceSourceToPatient",
    "EstimatedRadiographicMagnificationFactor",
)


def _present(ds) -> set[str]:
    return {keyword for keyword in _GEOMETRY_KEYWORDS if keyword in ds}


def _check_magnification(out, truth, base):
    # Detector spacing with the magnification SDD / SPD of the phantom's geometry, no distances.
    base_ds, _ = base
    g = truth["geometry"]
    ds = pydicom.dcmread(out)
    assert _present(base_ds) == {"ImagerPixelSpacing", "DistanceSourceToDetector", "DistanceSourceToPatient"}
    assert _present(ds) == {"ImagerPixelSpacing", "EstimatedRadiographicMagnificationFactor"}
    magnification = g["source_to_detector_mm"] / g["source_to_patient_mm"]
    assert float(ds.EstimatedRadiographicMagnificationFactor) == pytest.approx(magnification, rel=1e-12)
    assert [float(v) for v in ds.ImagerPixelSpacing] == pytest.approx([g["imager_pixel_spacing_mm"]] * 2, rel=1e-12)
    # (detector spacing over the magnification is the isocentre's mm per pixel)
    assert float(ds.ImagerPixelSpacing[0]) / magnification == pytest.approx(truth["mm_per_px"], rel=1e-12)


def _check_pixel_spacing(out, truth, base):
    ds = pydicom.dcmread(out)
    assert _present(ds) == {"PixelSpacing"} and ds.PixelSpacingCalibrationType == "GEOMETRY"
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([truth["mm_per_px"]] * 2, rel=1e-12)


def _check_no_calibration(out, truth, base):
    assert _present(pydicom.dcmread(out)) == set()


CASES = [
    pytest.param(["--tilt", "17"], _check_tilt, id="tilt"),
    pytest.param(["--dose", "low"], _check_dose, id="dose"),
    pytest.param(["--photometric", "MONOCHROME1"], _check_photometric, id="photometric"),
    pytest.param(["--bits", "10"], _check_bits, id="bits"),
    pytest.param(["--no-breathing"], _check_no_breathing, id="no-breathing"),
    pytest.param(["--sudden-shift"], _check_sudden_shift, id="sudden-shift"),
    pytest.param(["--jitter"], _check_jitter, id="jitter"),
    pytest.param(["--view", "ap"], _check_view, id="view"),
    pytest.param(["--syntax", "explicit-be"], _syntax_check("1.2.840.10008.1.2.2"), id="syntax-explicit-be"),
    pytest.param(["--syntax", "deflated"], _syntax_check("1.2.840.10008.1.2.1.99"), id="syntax-deflated"),
    pytest.param(["--syntax", "rle"], _syntax_check("1.2.840.10008.1.2.5"), id="syntax-rle"),
    pytest.param(["--syntax", "jpeg-ls"], _syntax_check("1.2.840.10008.1.2.4.80"), id="syntax-jpeg-ls"),
    pytest.param(["--object", "xrf"], _object_check("1.2.840.10008.5.1.4.1.1.12.2", "RF"), id="object-xrf"),
    pytest.param(
        ["--object", "enhanced-xa"], _object_check("1.2.840.10008.5.1.4.1.1.12.1.1", "XA"), id="object-enhanced-xa"
    ),
    pytest.param(["--object", "xa-series"], _check_series, id="object-xa-series"),
    pytest.param(["--object", "sc"], _check_sc, id="object-sc"),  # (its default calibration: pixel spacing)
    pytest.param(["--calibration", "magnification"], _check_magnification, id="calibration-magnification"),
    pytest.param(["--calibration", "pixel-spacing"], _check_pixel_spacing, id="calibration-pixel-spacing"),
    pytest.param(["--calibration", "none"], _check_no_calibration, id="calibration-none"),
]


@pytest.mark.parametrize(("flags", "check"), CASES)
def test_synth_option_reaches_the_output(tmp_path, base, flags, check):
    if "xa-series" in flags:
        out, truth = tmp_path / "series", tmp_path / "truth.json"
        assert main(["synth", SCENARIO, "--out", str(out), "--truth", str(truth), *CLIP, *flags]) == 0
        check(out, json.loads(truth.read_text()), base)
        return
    out, truth = _synth(tmp_path, *flags)
    check(out, truth, base)


@pytest.fixture
def no_simulation(monkeypatch):
    """Make any simulation fail the test: what it runs must be refused before one."""
    import vpimage.synth

    def simulate(*args, **kwargs):
        raise AssertionError("simulated before the options were checked")

    monkeypatch.setattr(vpimage.synth, "simulate", simulate)


def _refusal(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_a_calibration_the_object_cannot_carry_is_refused_before_the_simulation(tmp_path, capsys, no_simulation):
    # The secondary capture has no X-ray geometry: "distances" is an error (exit status 3,
    # one line naming what it allows), found before any frame is simulated; nothing is written.
    out = tmp_path / "run.dcm"
    assert main(["synth", SCENARIO, "--out", str(out), *CLIP, "--object", "sc", "--calibration", "distances"]) == 3
    assert _refusal(capsys) == (
        "vpimage: error: calibration 'distances' is not allowed in 'sc' objects; choose one of: pixel-spacing, none"
    )
    assert not out.exists()


def test_bits_the_object_does_not_allow_are_refused_before_the_simulation(tmp_path, capsys, no_simulation):
    # The legacy XA object (the default) enumerates 8, 10, 12 or 16 bits stored.
    out = tmp_path / "run.dcm"
    assert main(["synth", SCENARIO, "--out", str(out), *CLIP, "--bits", "11"]) == 3
    assert _refusal(capsys) == (
        "vpimage: error: 'xa' objects store 8, 10, 12, 16 bits; got 11 (the enhanced and sc objects take 8 to 16)"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("paths", "named", "first", "second"),
    [
        pytest.param({"--out": "q.dcm", "--truth": "q.dcm"}, "q.dcm", "--out", "--truth", id="out-truth"),
        pytest.param(
            {"--out": "q.dcm", "--wall": "sub/../q.dcm"}, "sub/../q.dcm", "--out", "--wall", id="out-wall-resolved"
        ),
        pytest.param(
            {"--out": "q.dcm", "--truth": "t.json", "--wall": "t.json"}, "t.json", "--truth", "--wall", id="truth-wall"
        ),
        pytest.param(
            {"--out": "t_masks.npz", "--truth": "t.json"},
            "t_masks.npz",
            "--out",
            "the masks of --truth",
            id="out-masks",
        ),
    ],
)
def test_two_outputs_at_one_path_are_refused_before_the_simulation(
    tmp_path, capsys, no_simulation, paths, named, first, second
):
    # The later would overwrite the earlier (a truth JSON in place of the DICOM): exit 3,
    # one line naming the path as the second option gives it, and both options; nothing written.
    (tmp_path / "sub").mkdir()
    flags = [item for option, path in paths.items() for item in (option, str(tmp_path / path))]
    assert main(["synth", SCENARIO, *flags, *CLIP]) == 3
    assert _refusal(capsys) == (
        f"vpimage: error: {tmp_path / named}: given as both {first} and {second}; each output needs a path of its own"
    )
    assert os.listdir(tmp_path) == ["sub"]


@pytest.mark.parametrize("obj, out", [("xa-series", "new/series"), ("xa", "new/deeper/run.dcm")])
def test_a_set_that_cannot_be_written_leaves_no_folder_the_run_made(tmp_path, capsys, obj, out):
    # The truth cannot be written (a folder is in its way): the series' folder, or the DICOM
    # file's new folders, were left behind empty.
    (tmp_path / "t.json").mkdir()
    flags = ["--out", str(tmp_path / out), "--object", obj, "--truth", str(tmp_path / "t.json")]
    assert main(["synth", SCENARIO, *flags, *CLIP]) == 1  # (output not writable: CONTRACT.md, 1)
    assert "t.json: cannot be written: it is a folder" in _refusal(capsys)
    assert sorted(os.listdir(tmp_path)) == ["t.json"]


def test_the_truth_and_wall_get_their_folders_as_the_dicom_does(tmp_path):
    # (Only --out's folder was made: a --truth or --wall in a new folder failed, after the simulation.)
    out, truth, wall = tmp_path / "a" / "run.dcm", tmp_path / "b" / "c" / "truth.json", tmp_path / "d" / "WALL.json"
    assert main(["synth", SCENARIO, "--out", str(out), "--truth", str(truth), "--wall", str(wall), *CLIP]) == 0
    assert json.loads(wall.read_text())["frame"] == 0
    assert json.loads(truth.read_text())["frames"] and out.is_file()


def test_more_frames_than_the_memory_bound_are_refused_before_the_simulation(tmp_path, capsys, no_simulation):
    # 4 GiB over 16 B a pixel of 64 x 64 and 512 KiB of cement grid a frame: 7281 frames.
    out = tmp_path / "run.dcm"
    assert main(["synth", SCENARIO, "--out", str(out), "--size", "64", "--frames", "7282"]) == 3
    assert _refusal(capsys) == (
        "vpimage: error: synth option `frames` = 7282: must be at most 7281 at size_px 64: "
        "a run must fit in 4 GiB of memory"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("truth", "wall", "named", "reason"),
    [
        pytest.param("a file/t.json", "WALL.json", "a file", "cannot be made a folder: File exists",
                     id="truth-under-a-file"),
        pytest.param("a folder", "WALL.json", "a folder", "cannot be written: it is a folder", id="truth-a-folder"),
        pytest.param("t.json", "a folder", "a folder", "cannot be written: it is a folder", id="wall-a-folder"),
    ],
)
def test_an_output_that_cannot_be_written_leaves_every_old_file_as_it_was(tmp_path, capsys, truth, wall, named, reason):
    # The DICOM, the truth, its masks and WALL.json are a set: one that cannot be written
    # costs one line naming it (exit 3), and no file is written, nor any old one replaced.
    (tmp_path / "a file").write_text("")
    (tmp_path / "a folder").mkdir()
    old = {name: f"old {name}" for name in ("run.dcm", "t.json", "t_masks.npz", "WALL.json")}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    flags = ["--out", str(tmp_path / "run.dcm"), "--truth", str(tmp_path / truth), "--wall", str(tmp_path / wall)]
    assert main(["synth", SCENARIO, *flags, *CLIP]) == 1
    assert _refusal(capsys) == f"vpimage: error: {tmp_path / named}: {reason}"
    assert sorted(os.listdir(tmp_path)) == sorted([*old, "a file", "a folder"])
    assert {name: (tmp_path / name).read_text() for name in old} == old
    assert os.listdir(tmp_path / "a folder") == []
