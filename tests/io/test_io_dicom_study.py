"""Every object x transfer syntax the phantom's writer makes reads back as its run:
the same pixels (MONOCHROME1 inverted), times (s) and mm/px at the isocentre."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from io_runs import CIRCLE, RECTANGLE, build_run, expected_frames, write

import vpimage.io
from vpimage.synth._dicom import OBJECTS, SYNTAXES
from vpimage.synth._dicom_syntax import J2K_PSNR_DB, JLS_NEAR_ERROR

ENHANCED = ("enhanced-xa", "enhanced-xrf")
SERIES = ("xa-series", "xrf-series")


def assert_pixels(decoded, expected, syntax, bits):
    assert decoded.shape == expected.shape and decoded.dtype == np.float32
    if SYNTAXES[syntax][1]:
        np.testing.assert_array_equal(decoded, expected)
    elif syntax == "jpeg-ls-near":  # NEAR bounds every pixel's error
        assert np.abs(decoded - expected).max() <= JLS_NEAR_ERROR
    else:  # lossy JPEG 2000 aims at a PSNR
        mse = np.mean((decoded.astype(float) - expected) ** 2)
        assert 10 * np.log10((2**bits - 1) ** 2 / mse) >= J2K_PSNR_DB - 1.0


@pytest.mark.filterwarnings("ignore:.*MONOCHROME")
@pytest.mark.parametrize("syntax", list(SYNTAXES))
@pytest.mark.parametrize("obj", list(OBJECTS))
def test_round_trip_pixels_times_and_mm(tmp_path, obj, syntax):
    odd = list(SYNTAXES).index(syntax) % 2 == 1  # half the cases: jittered, MONOCHROME1, 10 bits
    run = build_run(jittered=odd, photometric="MONOCHROME1" if odd else "MONOCHROME2",
                    bits=10 if odd else 12, field=RECTANGLE if odd else CIRCLE)
    study = vpimage.io.open(write(run, tmp_path, obj, syntax))
    assert (study.n_frames, study.rows, study.columns) == run.frames.shape
    frames = np.stack(list(study.iter_frames()))
    assert_pixels(frames, expected_frames(run), syntax, run.bits_stored)
    np.testing.assert_array_equal(study.frame(3), frames[3])
    np.testing.assert_allclose(study.timing.time_s, run.time_s, atol=1e-6)
    assert study.timing.time_s.dtype == np.float64
    assert study.geometry.mm_per_px == pytest.approx(run.mm_per_px, rel=1e-9)
    assert study.photometric == run.photometric
    assert study.transfer_syntax == SYNTAXES[syntax][0].name
    assert study.sop_class == OBJECTS[obj].name
    if obj != "sc":  # the secondary capture has no positioner nor shutter
        assert study.geometry.view == "lateral"
        assert study.geometry.fov_source == "shutter"


@pytest.mark.parametrize(
    ("obj", "calibration", "source"),
    [
        ("xa", "distances", "ImagerPixelSpacing/DistanceSourceToDetector/DistanceSourceToPatient"),
        ("xrf", "magnification", "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"),
        ("xa-series", "pixel-spacing", "PixelSpacing"),
        ("sc", "pixel-spacing", "PixelSpacing"),
        ("enhanced-xa", "distances", "ImagerPixelSpacing/DistanceSourceToDetector/DistanceSourceToIsocenter"),
    ],
)
def test_each_calibration_gives_the_run_mm_per_px_and_names_its_source(tmp_path, obj, calibration, source):
    run = build_run()
    study = vpimage.io.open(write(run, tmp_path, obj, calibration=calibration))
    assert study.geometry.mm_per_px == pytest.approx(0.154 * 740 / 1100, rel=1e-9)
    assert study.geometry.calibration == source


@pytest.mark.parametrize("obj", ["xa", "enhanced-xrf", "sc", "xrf-series"])
def test_no_calibration_is_none_with_a_warning(tmp_path, obj):
    path = write(build_run(), tmp_path, obj, calibration="none")
    with pytest.warns(UserWarning, match="no pixel spacing"):
        study = vpimage.io.open(path)
    assert study.geometry.mm_per_px is None and study.geometry.calibration == "none"


@pytest.mark.parametrize("obj", ["xa", "enhanced-xa", "xa-series"])
def test_shutter_gives_the_written_field(tmp_path, obj):
    for field, name in ((CIRCLE, "circle"), (RECTANGLE, "rectangle")):
        study = vpimage.io.open(write(build_run(field=field), tmp_path, obj, name=name))
        if field is CIRCLE:  # the writer rounds the circle to whole pixels (Integer Strings)
            field = type(field)(field.shape, centre_rc=(24, 30), radius_px=21)
        np.testing.assert_array_equal(study.geometry.fov_mask, field.mask(48, 60))
        assert study.geometry.fov_source == "shutter"


@pytest.mark.parametrize(
    ("primary", "secondary", "view"),
    [(-88.5, 3.25, "lateral"), (90.0, 0.0, "lateral"), (0.0, 0.0, "ap"), (178.0, 5.0, "ap"),
     (45.0, 0.0, "oblique"), (90.0, 30.0, "oblique")],
)
def test_view_from_positioner_angles(tmp_path, primary, secondary, view):
    run = build_run(primary_deg=primary, secondary_deg=secondary)
    for obj in ("xrf", "enhanced-xa"):
        assert vpimage.io.open(write(run, tmp_path, obj, name=obj)).geometry.view == view


def test_series_is_ordered_by_acquisition_time_not_file_name(tmp_path):
    run = build_run(n=4, jittered=True)
    folder = write(run, tmp_path, "xa-series")
    names = sorted(p.name for p in folder.iterdir())
    for name, new in zip(names, reversed(names)):  # file names now run against time
        (folder / name).rename(folder / f"x{new}")
    study = vpimage.io.open(folder)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run))
    np.testing.assert_allclose(study.timing.time_s, run.time_s, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
def test_white_level_is_the_headers_stored_range_not_the_brightest_pixel(tmp_path, wg04):
    # wg04 stores 10 bits; its brightest pixel is 502, which a guess from the pixels
    # would take for a 9-bit range (white 511, every log-encoded attenuation doubled).
    study = vpimage.io.open(wg04 / "XA1_UNC.dcm")
    assert study.frame(0).max() < 512
    assert study.white_level == 2**10 - 1
    run = build_run(n=2)
    assert vpimage.io.open(write(run, tmp_path, "xa")).white_level == 2**run.bits_stored - 1


def test_a_series_whose_instances_store_different_ranges_is_refused(tmp_path):
    from pydicom import dcmread

    from vpimage.errors import InvalidStudyError

    folder = write(build_run(n=3), tmp_path, "xa-series")
    last = sorted(folder.iterdir())[-1]
    ds = dcmread(last)
    ds.BitsStored, ds.HighBit = 16, 15
    ds.save_as(last)
    with pytest.raises(InvalidStudyError, match="value range differs"):
        vpimage.io.open(folder)


def test_one_instance_in_two_files_is_refused_naming_both(tmp_path):
    import shutil

    from vpimage.errors import InvalidStudyError

    folder = write(build_run(n=8), tmp_path, "xa-series")
    shutil.copy(folder / "0004.dcm", folder / "0004 (copy).dcm")
    with pytest.raises(InvalidStudyError, match="SOP Instance UID is the same as in 0004"):
        vpimage.io.open(folder)
    (source,) = vpimage.io.discover(folder)
    with pytest.raises(InvalidStudyError, match="one instance in two files") as info:
        source.open()
    assert "0004.dcm" in str(info.value) and "0004 (copy).dcm" in str(info.value)

    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(write(build_run(n=3), tmp_path, "xa", name="run"), runs / "a.dcm")
    shutil.copy(runs / "a.dcm", runs / "b.dcm")  # the same multi-frame file twice: not played twice
    with pytest.raises(InvalidStudyError, match="b.dcm: .0008,0018. SOP Instance UID is the same as in a.dcm"):
        vpimage.io.open(runs)


def test_an_instance_without_a_time_keeps_its_instance_number_place(tmp_path):
    from pydicom import dcmread

    run = build_run(n=4, jittered=True)
    folder = write(run, tmp_path, "xa-series")
    untimed = sorted(folder.iterdir())[1]  # the second frame by Instance Number
    ds = dcmread(untimed)
    for keyword in ("AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime", "ContentDate", "ContentTime"):
        ds.pop(keyword, None)
    ds.save_as(untimed, enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the timing falls back, with its own warning)
        study = vpimage.io.open(folder)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run))
