"""The phantom's DICOM writer: what it writes reads back, with plain pydicom, as the run.

Every truth here is the hand-built FluoroRun itself: its frames, times (s), mm/px at the
isocentre, angles and field. Nothing depends on the phantom renderer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.tag import Tag

from vpimage.errors import ConfigError, OutputError
from vpimage.synth._dicom import CALIBRATIONS, OBJECTS, SYNTAXES, write_dicom
from vpimage.synth._dicom_syntax import J2K_PSNR_DB, JLS_NEAR_ERROR
from fluoro_runs import CIRCLE, RECTANGLE
from fluoro_runs import build_run as make_run
from vpimage.synth._run import FluoroRun

ENHANCED = ("enhanced-xa", "enhanced-xrf")
SERIES = ("xa-series", "xrf-series")
# Calibrations each object accepts (the rest must raise ConfigError).
ALLOWED = {obj: CALIBRATIONS for obj in ("xa", "xrf", *SERIES)} | {
    "enhanced-xa": ("distances", "none"),
    "enhanced-xrf": ("distances", "none"),
    "sc": ("pixel-spacing", "none"),
}

def write(run, tmp_path, obj, syntax="explicit-le", calibration=None, seed=0, name="run"):
    out = tmp_path / (name if obj in SERIES else f"{name}.dcm")
    return write_dicom(run, out, obj=obj, syntax=syntax, calibration=calibration, seed=seed)


def read(paths):
    """(datasets, frames [frames, rows, cols]) as plain pydicom decodes them."""
    datasets = [dcmread(p) for p in paths]
    frames = np.concatenate([ds.pixel_array.reshape(-1, ds.Rows, ds.Columns) for ds in datasets])
    return datasets, frames


def _seconds(dt: str) -> float:
    return datetime.strptime(dt, "%Y%m%d%H%M%S.%f").timestamp()


def times_s(datasets) -> np.ndarray:
    """Frame times (s from the first) from what the files say, by the object's own rules."""
    first = datasets[0]
    if len(datasets) > 1:
        stamps = [_seconds(ds.AcquisitionDateTime) for ds in datasets]
    elif "PerFrameFunctionalGroupsSequence" in first:
        stamps = [
            _seconds(item.FrameContentSequence[0].FrameAcquisitionDateTime)
            for item in first.PerFrameFunctionalGroupsSequence
        ]
    elif first.FrameIncrementPointer == Tag("FrameTimeVector"):
        assert "FrameTime" not in first
        return np.cumsum([float(v) for v in first.FrameTimeVector]) / 1000.0
    else:
        assert first.FrameIncrementPointer == Tag("FrameTime") and "FrameTimeVector" not in first
        return np.arange(first.NumberOfFrames) * float(first.FrameTime) / 1000.0
    return np.asarray(stamps) - stamps[0]


def _shared(ds, sequence):
    shared = ds.get("SharedFunctionalGroupsSequence")
    return shared[0][sequence][0] if shared and sequence in shared[0] else None


def mm_per_px(ds) -> float | None:
    """mm at the isocentre recomputed from whichever calibration the file carries."""
    if "PixelSpacing" in ds:
        return float(ds.PixelSpacing[0])
    properties = _shared(ds, "FramePixelDataPropertiesSequence")
    holder = properties if properties is not None and "ImagerPixelSpacing" in properties else ds
    if "ImagerPixelSpacing" not in holder:
        return None
    spacing = float(holder.ImagerPixelSpacing[0])
    if "EstimatedRadiographicMagnificationFactor" in ds:
        return spacing / float(ds.EstimatedRadiographicMagnificationFactor)
    geometry = _shared(ds, "XRayGeometrySequence")
    if geometry is not None:
        return spacing * float(geometry.DistanceSourceToIsocenter) / float(geometry.DistanceSourceToDetector)
    return spacing * float(ds.DistanceSourceToPatient) / float(ds.DistanceSourceToDetector)


def assert_pixels(written, decoded, syntax, bits):
    assert decoded.shape == written.shape
    if SYNTAXES[syntax][1]:
        np.testing.assert_array_equal(decoded, written)
    elif syntax == "jpeg-ls-near":  # NEAR bounds every pixel's error
        assert np.abs(decoded.astype(int) - written).max() <= JLS_NEAR_ERROR
    else:  # lossy JPEG 2000 aims at a PSNR; OpenJPEG lands within a fraction of a dB
        mse = np.mean((decoded.astype(float) - written) ** 2)
        assert 10 * np.log10((2**bits - 1) ** 2 / mse) >= J2K_PSNR_DB - 1.0


@pytest.mark.parametrize("syntax", list(SYNTAXES))
@pytest.mark.parametrize("obj", list(OBJECTS))
def test_round_trip_pixels_times_and_calibration(tmp_path, obj, syntax):
    jittered = list(SYNTAXES).index(syntax) % 2 == 1  # half the cases need a Frame Time Vector
    photometric = "MONOCHROME1" if obj in ENHANCED and jittered else "MONOCHROME2"
    field = RECTANGLE if jittered else CIRCLE
    run = make_run(jittered=jittered, field=field, photometric=photometric, bits=10 + 2 * jittered)
    paths = write(run, tmp_path, obj, syntax)
    datasets, frames = read(paths)
    assert len(paths) == (run.frames.shape[0] if obj in SERIES else 1)
    assert_pixels(run.frames, frames, syntax, run.bits_stored)
    np.testing.assert_allclose(times_s(datasets), run.time_s, atol=1e-3)
    assert mm_per_px(datasets[0]) == pytest.approx(run.mm_per_px, rel=1e-9)
    for ds in datasets:
        assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax][0]
        assert ds.SOPClassUID == OBJECTS[obj]
        assert (ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            photometric, 16, run.bits_stored, run.bits_stored - 1, 0)


@pytest.mark.parametrize("jittered", [False, True])
@pytest.mark.parametrize("obj", ["xa", "sc"])
def test_legacy_timing_uses_frame_time_or_vector(tmp_path, obj, jittered):
    run = make_run(jittered=jittered)
    (ds,), _ = read(write(run, tmp_path, obj))
    assert ds.FrameIncrementPointer == Tag("FrameTimeVector" if jittered else "FrameTime")
    if jittered:
        assert float(ds.FrameTimeVector[0]) == 0.0
        np.testing.assert_allclose([float(v) for v in ds.FrameTimeVector[1:]], np.diff(run.time_s) * 1000, atol=1e-3)
    else:
        assert float(ds.FrameTime) == pytest.approx(1000 / 15.0, abs=1e-3)
    assert ds.CineRate == ds.RecommendedDisplayFrameRate == 15
    assert ds.AcquisitionDateTime == "20260101120000.000000"


def test_jittered_run_too_long_for_a_frame_time_vector_is_a_config_error(tmp_path):
    run = make_run(jittered=True, n=7000)  # 7000 values of ~10 characters: over 64 KiB
    small = FluoroRun(**{**run.__dict__, "frames": run.frames[:, :2, :2]})
    with pytest.raises(ConfigError, match="Frame Time Vector"):
        write(small, tmp_path, "xa")
    (ds,), _ = read(write(small, tmp_path, "enhanced-xa"))  # per-frame datetimes have no such limit
    np.testing.assert_allclose(times_s([ds]), run.time_s, atol=1e-3)


def test_enhanced_frame_content_durations_are_the_intervals(tmp_path):
    run = make_run(jittered=True)
    (ds,), _ = read(write(run, tmp_path, "enhanced-xa"))
    contents = [item.FrameContentSequence[0] for item in ds.PerFrameFunctionalGroupsSequence]
    durations_ms = [c.FrameAcquisitionDuration for c in contents]
    np.testing.assert_allclose(durations_ms[:-1], np.diff(run.time_s) * 1000, atol=1e-6)
    assert all(c.FrameReferenceDateTime == c.FrameAcquisitionDateTime for c in contents)
    assert ds.FrameDisplaySequence[0].RecommendedDisplayFrameRateInFloat == 15.0


@pytest.mark.parametrize(
    ("obj", "calibration"), [(obj, cal) for obj in OBJECTS for cal in CALIBRATIONS if cal in ALLOWED[obj]]
)
def test_each_calibration_gives_the_run_mm_per_px(tmp_path, obj, calibration):
    run = make_run()
    datasets, _ = read(write(run, tmp_path, obj, calibration=calibration))
    for ds in datasets:
        if calibration == "none":
            assert mm_per_px(ds) is None
            assert "ImagerPixelSpacing" not in ds and "PixelSpacing" not in ds
        else:
            assert mm_per_px(ds) == pytest.approx(run.mm_per_px, rel=1e-9)
    ds = datasets[0]
    if calibration == "distances" and obj not in ENHANCED:
        assert float(ds.DistanceSourceToDetector) == 1100.0 and float(ds.DistanceSourceToPatient) == 740.0
    if calibration == "magnification":
        assert "DistanceSourceToPatient" not in ds
        assert float(ds.EstimatedRadiographicMagnificationFactor) == pytest.approx(1100.0 / 740.0, rel=1e-12)
    if calibration == "pixel-spacing":
        assert "ImagerPixelSpacing" not in ds and ds.PixelSpacingCalibrationType == "GEOMETRY"
    if obj in ENHANCED:
        assert ds.ImageType[0] == ("ORIGINAL" if calibration == "distances" else "DERIVED")


@pytest.mark.parametrize(
    ("obj", "calibration"), [(obj, cal) for obj in OBJECTS for cal in CALIBRATIONS if cal not in ALLOWED[obj]]
)
def test_calibration_the_iod_cannot_carry_is_a_config_error(tmp_path, obj, calibration):
    with pytest.raises(ConfigError, match=f"calibration '{calibration}' is not allowed in '{obj}'"):
        write(make_run(), tmp_path, obj, calibration=calibration)
    assert list(tmp_path.iterdir()) == []


def _shutter_holder(ds):
    return _shared(ds, "FrameDisplayShutterSequence") or ds


@pytest.mark.parametrize("field", [CIRCLE, RECTANGLE], ids=["circle", "rectangle"])
@pytest.mark.parametrize("obj", ["xa", "xrf", "enhanced-xa", "enhanced-xrf", "xa-series"])
def test_positioner_angles_and_shutter_as_written(tmp_path, obj, field):
    run = make_run(field=field)
    datasets, _ = read(write(run, tmp_path, obj))
    for ds in datasets:
        positioner = _shared(ds, "PositionerPositionSequence") or ds
        assert float(positioner.PositionerPrimaryAngle) == -88.5
        assert float(positioner.PositionerSecondaryAngle) == 3.25
        shutter = _shutter_holder(ds)
        if field is CIRCLE:  # centre (23.6, 30.2) 0-based -> (25, 31) 1-based, radius 21.4 -> 21
            assert shutter.ShutterShape == "CIRCULAR"
            assert list(shutter.CenterOfCircularShutter) == [25, 31]
            assert shutter.RadiusOfCircularShutter == 21
        else:
            assert shutter.ShutterShape == "RECTANGULAR"
            edges = (shutter.ShutterLeftVerticalEdge, shutter.ShutterRightVerticalEdge,
                     shutter.ShutterUpperHorizontalEdge, shutter.ShutterLowerHorizontalEdge)
            assert edges == (4, 58, 6, 42)
    if obj in ENHANCED:  # the same field as collimation
        collimator = _shared(datasets[0], "CollimatorShapeSequence")
        assert collimator.CollimatorShape == shutter.ShutterShape


def test_enhanced_monochrome1_has_inverse_presentation(tmp_path):
    (ds,), frames = read(write(make_run(photometric="MONOCHROME1"), tmp_path, "enhanced-xrf"))
    assert (ds.PhotometricInterpretation, ds.PresentationLUTShape, ds.Modality) == ("MONOCHROME1", "INVERSE", "RF")


@pytest.mark.parametrize("obj", SERIES)
def test_series_files_share_study_and_series(tmp_path, obj):
    run = make_run()
    paths = write(run, tmp_path, obj)
    assert [p.name for p in paths] == ["0001.dcm", "0002.dcm", "0003.dcm", "0004.dcm", "0005.dcm"]
    datasets, _ = read(paths)
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(paths)
    assert [ds.InstanceNumber for ds in datasets] == [1, 2, 3, 4, 5]
    assert all("NumberOfFrames" not in ds for ds in datasets)
    assert [ds.ContentTime for ds in datasets] == [ds.AcquisitionDateTime[8:] for ds in datasets]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [p.name for p in paths]  # no temp files left


def test_a_series_is_not_written_among_files_it_would_not_replace(tmp_path):
    # A shorter series over a longer one left the longer one's last files: read as one
    # study, two runs mixed (and neither matched its truth). Rewriting the same series, or
    # into an empty folder, is fine.
    write(make_run(n=5), tmp_path, "xa-series")
    write(make_run(n=5, seed=1), tmp_path, "xa-series")  # the same files, replaced
    with pytest.raises(OutputError, match="holds 0004.dcm and 1 more, which the series would not replace") as error:
        write(make_run(n=3), tmp_path, "xa-series")
    assert error.value.path == str(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    assert len(write(make_run(n=3), tmp_path, "xa-series", name="empty")) == 3


@pytest.mark.parametrize("obj", ["xa", "enhanced-xa", "xrf-series"])
@pytest.mark.parametrize("syntax", ["j2k", "jpeg-ls-near"])
def test_lossy_syntaxes_say_so(tmp_path, syntax, obj):
    datasets, _ = read(write(make_run(), tmp_path, obj, syntax))
    ds = datasets[-1]
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == {"j2k": "ISO_15444_1", "jpeg-ls-near": "ISO_14495_1"}[syntax]
    assert float(ds.LossyImageCompressionRatio) > 1.0


@pytest.mark.parametrize("syntax", ["explicit-le", "jpeg-ls", "jpeg-lossless"])
def test_lossless_syntaxes_do_not_claim_loss(tmp_path, syntax):
    (xa,), _ = read(write(make_run(), tmp_path, "xa", syntax, name="xa"))
    (enhanced,), _ = read(write(make_run(), tmp_path, "enhanced-xa", syntax, name="enhanced"))
    assert "LossyImageCompression" not in xa
    assert enhanced.LossyImageCompression == "00"


@pytest.mark.parametrize("obj", list(OBJECTS))
def test_file_meta_and_dummy_patient(tmp_path, obj):
    paths = write(make_run(), tmp_path, obj, "rle")
    raw = paths[0].read_bytes()
    assert raw[:128] == b"\0" * 128 and raw[128:132] == b"DICM"
    ds = dcmread(paths[0])
    meta = ds.file_meta
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == OBJECTS[obj]
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == SYNTAXES["rle"][0]
    assert meta.ImplementationClassUID.is_valid
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == ("Phantom^Vertebroplasty", "PHANTOM", "")
    assert ds.StudyDate == "20260101"
    assert ds.Modality == {"sc": "OT"}.get(obj, "RF" if "xrf" in obj else "XA")


@pytest.mark.parametrize(
    ("obj", "syntax"), [("xa", "jpeg-lossless"), ("enhanced-xrf", "j2k"), ("xrf-series", "deflated")]
)
def test_same_seed_same_bytes_other_seed_other_uids(tmp_path, obj, syntax):
    run = make_run(jittered=True)
    first = write(run, tmp_path, obj, syntax, seed=7, name="a")
    again = write(run, tmp_path, obj, syntax, seed=7, name="b")
    other = write(run, tmp_path, obj, syntax, seed=8, name="c")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert dcmread(first[0]).StudyInstanceUID != dcmread(other[0]).StudyInstanceUID
    assert dcmread(first[0]).SOPInstanceUID != dcmread(other[0]).SOPInstanceUID


@pytest.mark.parametrize(
    ("option", "value"), [("obj", "dx"), ("syntax", "jpeg-baseline"), ("calibration", "ruler")]
)
def test_unknown_option_is_a_config_error_naming_the_choices(tmp_path, option, value):
    kwargs = {"obj": "xa", "syntax": "explicit-le", "calibration": "distances", option: value}
    with pytest.raises(ConfigError, match=f"unknown {option} '{value}'; choose one of: ") as info:
        write_dicom(make_run(), tmp_path / "x.dcm", **kwargs)
    allowed = {"obj": OBJECTS, "syntax": SYNTAXES, "calibration": CALIBRATIONS}[option]
    assert all(name in str(info.value) for name in allowed)


def test_run_that_contradicts_itself_is_a_config_error(tmp_path):
    run = make_run(bits=12)
    too_high = FluoroRun(**{**run.__dict__, "bits_stored": 10})
    with pytest.raises(ConfigError, match="below 2 \\*\\* bits_stored"):
        write_dicom(too_high, tmp_path / "x.dcm")
    with pytest.raises(ConfigError, match="one time per frame"):
        write_dicom(FluoroRun(**{**run.__dict__, "time_s": run.time_s[:-1]}), tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from pydicom.dataset import Dataset

    target = tmp_path / "run.dcm"
    target.write_bytes(b"previous")

    def half_write(self, path, **kwargs):
        with open(path, "wb") as stream:
            stream.write(b"\0" * 64)
        raise OSError("disk full")

    monkeypatch.setattr(Dataset, "save_as", half_write)
    with pytest.raises(OutputError, match="run.dcm: cannot be written: disk full"):
        write(make_run(), tmp_path, "xa")
    assert [p.name for p in tmp_path.iterdir()] == ["run.dcm"]
    assert target.read_bytes() == b"previous"


def test_missing_pydicom_encoder_names_the_package(tmp_path, monkeypatch):
    import vpimage.synth._dicom_syntax as syntax_module

    class Unavailable:
        is_available = False
        missing_dependencies = ["pylibjpeg-openjpeg>=2.0"]

    monkeypatch.setattr(syntax_module, "get_encoder", lambda uid: Unavailable())
    with pytest.raises(ConfigError, match="pylibjpeg-openjpeg"):
        write(make_run(), tmp_path, "xa", "j2k-lossless")
    assert list(tmp_path.iterdir()) == []


def test_missing_gdcm_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdcm", None)  # import gdcm now raises ImportError
    with pytest.raises(ConfigError, match="python-gdcm"):
        write(make_run(), tmp_path, "xa", "jpeg-lossless")


DCIODVFY = shutil.which("dciodvfy")
# dicom3tools' dciodvfy enumerates Modality of Enhanced XRF as XA/XRF, but PS3.3 A.48.3.1
# says "The Modality Type attribute (0008,0060) shall have the value RF": its one false error.
DCIODVFY_FALSE_ERRORS = {
    "enhanced-xrf": ["Error - Unrecognized enumerated value <RF> for value 1 of attribute <Modality>"]
}


def dciodvfy_errors(path, obj) -> list[str]:
    assert DCIODVFY, "dciodvfy (Debian package dicom3tools) is needed: apt-get install dicom3tools"
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error") and line not in DCIODVFY_FALSE_ERRORS.get(obj, [])]


# This dciodvfy cannot inflate deflated files (test_dcmtk_decodes_the_same_frames checks
# their inflated twin); each object is checked uncompressed, in big endian and in two
# compressed syntaxes, one of them lossy.
@pytest.mark.parametrize("syntax", ["explicit-le", "explicit-be", "jpeg-ls", "j2k"])
@pytest.mark.parametrize("obj", list(OBJECTS))
def test_dciodvfy_finds_no_errors(tmp_path, obj, syntax):
    run = make_run(jittered=syntax == "jpeg-ls", field=RECTANGLE if syntax == "j2k" else CIRCLE)
    paths = write(run, tmp_path, obj, syntax)
    for path in paths[:2]:
        assert dciodvfy_errors(path, obj) == []


@pytest.mark.parametrize(
    ("obj", "calibration", "photometric"),
    [(obj, cal, "MONOCHROME2") for obj in ("xa", "xrf", "xa-series", "sc") for cal in ALLOWED[obj]]
    + [(obj, cal, ph) for obj in ENHANCED for cal in ALLOWED[obj] for ph in ("MONOCHROME1", "MONOCHROME2")],
)
def test_dciodvfy_finds_no_errors_in_any_calibration(tmp_path, obj, calibration, photometric):
    paths = write(make_run(photometric=photometric), tmp_path, obj, calibration=calibration)
    assert dciodvfy_errors(paths[0], obj) == []


@pytest.mark.parametrize("obj", ["enhanced-xa", "enhanced-xrf", "sc"])
def test_dciodvfy_finds_no_errors_at_11_bits_where_the_object_allows_them(tmp_path, obj):
    paths = write(make_run(bits=11), tmp_path, obj)
    assert int(dcmread(paths[0]).BitsStored) == 11
    assert dciodvfy_errors(paths[0], obj) == []


@pytest.mark.parametrize("obj", ["xa", "xrf", "xa-series", "xrf-series"])
def test_legacy_xray_objects_refuse_bits_their_module_does_not_enumerate(tmp_path, obj):
    # The legacy XA and XRF image modules allow 8, 10, 12 or 16 bits stored: 11 was written,
    # and dciodvfy flagged Bits Stored and High Bit as unrecognized enumerated values.
    with pytest.raises(ConfigError, match=f"'{obj}' objects store 8, 10, 12, 16 bits; got 11"):
        write(make_run(bits=11), tmp_path, obj)
    assert list(tmp_path.iterdir()) == []


def test_dciodvfy_does_flag_monochrome1_in_legacy_xa(tmp_path, caplog):
    """The legacy IOD allows only MONOCHROME2: the writer logs it, the validator flags it
    (and this proves the validator check above can fail)."""
    with caplog.at_level("WARNING", logger="vpimage.synth._dicom"):
        paths = write(make_run(photometric="MONOCHROME1"), tmp_path, "xa")
    assert "allows only MONOCHROME2" in caplog.text
    assert any("MONOCHROME1" in line for line in dciodvfy_errors(paths[0], "xa"))


# A second, independent toolkit (dcmtk) decodes each bit stream it supports back to
# explicit little endian: the frames must be the run's, not only pydicom's reading of them.
DCMTK_DECODERS = {
    "rle": ["dcmdrle"],
    "jpeg-lossless": ["dcmdjpeg"],
    "jpeg-lossless-p14": ["dcmdjpeg"],
    "jpeg-ls": ["dcmdjpls"],
    "jpeg-ls-near": ["dcmdjpls"],
    "deflated": ["dcmconv", "+te"],
    "explicit-be": ["dcmconv", "+te"],
}


@pytest.mark.parametrize("syntax", list(DCMTK_DECODERS))
@pytest.mark.parametrize("obj", ["xa", "enhanced-xa"])
def test_dcmtk_decodes_the_same_frames(tmp_path, obj, syntax):
    tool, *flags = DCMTK_DECODERS[syntax]
    assert shutil.which(tool), f"{tool} (Debian package dcmtk) is needed: apt-get install dcmtk"
    run = make_run(jittered=True)
    (path,) = write(run, tmp_path, obj, syntax)
    decoded = tmp_path / "decoded.dcm"
    subprocess.run([tool, *flags, str(path), str(decoded)], check=True, capture_output=True)
    ds = dcmread(decoded)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert_pixels(run.frames, ds.pixel_array, syntax, run.bits_stored)
    if syntax == "deflated":  # dciodvfy cannot inflate: validate the inflated twin
        assert dciodvfy_errors(decoded, obj) == []
