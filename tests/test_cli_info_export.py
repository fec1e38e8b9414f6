"""``vpimage info`` and ``vpimage export`` per CONTRACT.md, on hand-built phantom runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "io"))
from io_runs import build_run, expected_frames, write  # noqa: E402

from vpimage.cli import main  # noqa: E402

CONTRACT_KEYS = {"frames", "rows", "columns", "fps", "duration_s", "mm_per_px", "calibration", "view",
                 "photometric", "transfer_syntax", "sop_class"}


@pytest.fixture
def study_file(tmp_path):
    run = build_run(n=6, jittered=True, photometric="MONOCHROME1", bits=10)
    return run, write(run, tmp_path, "enhanced-xrf", "jpeg-ls", name="study")


def test_info_json_has_the_contract_keys_and_the_run_values(study_file, capsys):
    run, path = study_file
    assert main(["info", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert CONTRACT_KEYS <= set(facts)
    assert (facts["frames"], facts["rows"], facts["columns"]) == (6, 48, 60)
    assert facts["duration_s"] == pytest.approx(run.time_s[-1], abs=1e-6)
    assert facts["fps"] == pytest.approx(5 / run.time_s[-1], rel=1e-6)
    assert facts["mm_per_px"] == pytest.approx(run.mm_per_px, rel=1e-9)
    assert facts["view"] == "lateral" and facts["photometric"] == "MONOCHROME1"
    assert facts["transfer_syntax"] == "JPEG-LS Lossless Image Compression"
    assert facts["sop_class"] == "Enhanced XRF Image Storage"


def test_info_never_shows_patient_identity(tmp_path, capsys):
    from pydicom import dcmread

    path = write(build_run(), tmp_path, "xa")
    ds = dcmread(path)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "ID-4711", "19510203"
    ds.save_as(path, enforce_file_format=True)
    for extra in ([], ["--json"]):
        assert main(["info", str(path), *extra]) == 0
        out = capsys.readouterr()
        for secret in ("Doe", "Jane", "4711", "19510203", "1951"):
            assert secret not in out.out + out.err


def test_info_text_lists_the_same_facts(study_file, capsys):
    assert main(["info", str(study_file[1])]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["frames"] == "6" and lines["view"] == "lateral"


def test_export_writes_frames_as_the_analysis_sees_them_and_times(study_file, tmp_path):
    run, path = study_file
    out = tmp_path / "sub" / "frames.npz"
    assert main(["export", str(path), "--out", str(out)]) == 0
    with np.load(out) as archive:
        assert set(archive.files) == {"frames", "time_s"}
        assert archive["frames"].dtype == np.float32 and archive["time_s"].dtype == np.float64
        np.testing.assert_array_equal(archive["frames"], expected_frames(run))
        np.testing.assert_allclose(archive["time_s"], run.time_s, atol=1e-6)
    assert [p.name for p in out.parent.iterdir()] == ["frames.npz"]  # no temporary left


def test_bad_input_exits_3_with_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    nested = tmp_path / "new" / "sub" / "x.npz"
    for argv in (
        ["info", str(bad)],
        ["export", str(bad), "--out", str(tmp_path / "x.npz")],
        ["export", str(bad), "--out", str(nested)],
        ["analyze", str(bad), "--out", str(tmp_path / "new" / "deep")],
    ):
        assert main(argv) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "broken.dcm" in err[0] and err[0].startswith("vpimage: error:")
    # Nothing is left behind, not even the empty folders the outputs would have gone in.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.dcm"]


def test_failed_export_keeps_the_old_file(tmp_path, capsys):
    path = write(build_run(n=3), tmp_path, "xa", "jpeg-ls")
    from pydicom import dcmread
    from pydicom.encaps import encapsulate, generate_frames

    ds = dcmread(path)
    fragments = list(generate_frames(ds.PixelData, number_of_frames=3))
    ds.PixelData = encapsulate(fragments[:2] + [bytes(fragments[2][:20]) + bytes(len(fragments[2]) - 20)])
    ds.save_as(path, enforce_file_format=True)
    out = tmp_path / "old.npz"
    out.write_bytes(b"previous")
    assert main(["export", str(path), "--out", str(out)]) == 3
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz", "run.dcm"]


def test_a_warning_every_frame_raises_is_one_line(tmp_path, capsys):
    path = write(build_run(n=4), tmp_path, "xa", name="grey")
    ds = pydicom.dcmread(path)
    grey = (ds.pixel_array >> 4).astype(np.uint8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = np.repeat(grey[..., None], 3, axis=-1).tobytes()
    ds.save_as(tmp_path / "rgb.dcm")
    assert main(["export", str(tmp_path / "rgb.dcm"), "--out", str(tmp_path / "rgb.npz")]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("vpimage: warning:") and line.endswith("RGB frames converted to luminance")


@pytest.mark.parametrize("command", ["export", "analyze"])
def test_a_frame_that_cannot_be_decoded_is_named_without_the_patients_identity(tmp_path, capsys, command):
    # A folder and a file named after the patient (as some exports name them), the last
    # frame's JPEG-LS data zeroed past its first bytes: the study opens, the frame fails.
    # The error names the file by the study's key, as its warnings do.
    from pydicom import dcmread

    ds = dcmread(write(build_run(n=6), tmp_path, "xa", "jpeg-ls"))
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "ID-4711", "19510203"
    folder = tmp_path / "in" / "DOE_JANE_19510203"
    folder.mkdir(parents=True)
    target = folder / "Doe.Jane.dcm"
    ds.save_as(target, enforce_file_format=True)
    data = bytearray(target.read_bytes())
    last = data.rindex(b"\xfe\xff\x00\xe0")  # the last fragment's item tag, its length, its data
    length = int.from_bytes(data[last + 4 : last + 8], "little")
    data[last + 28 : last + 8 + length] = bytes(length - 20)
    target.write_bytes(bytes(data))
    argv = {"export": ["export", str(tmp_path / "in"), "--out", str(tmp_path / "o.npz")],
            "analyze": ["analyze", str(tmp_path / "in"), "--out", str(tmp_path / "out")]}[command]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "frame 5: the JPEG-LS Lossless Image Compression data is truncated" in err
    assert "/in/study_" in err
    for secret in ("Doe", "DOE", "Jane", "JANE", "4711", "19510203"):
        assert secret not in err, err
