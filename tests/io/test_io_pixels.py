"""Pixel semantics: rescale, Modality LUT, MONOCHROME1 inversion, colour to luminance."""

from __future__ import annotations

import numpy as np
import pytest
from io_runs import build_run, expected_frames, write
from pydicom import dcmread
from pydicom.dataset import Dataset

import vpimage.io
from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._pixels import pixel_format, to_analysis


def header(**values) -> Dataset:
    ds = Dataset()
    base = dict(Rows=2, Columns=3, SamplesPerPixel=1, BitsAllocated=16, BitsStored=12, HighBit=11,
                PixelRepresentation=0, PhotometricInterpretation="MONOCHROME2")
    for keyword, value in {**base, **values}.items():
        setattr(ds, keyword, value)
    return ds


RAW = np.array([[0, 1, 100], [2048, 4094, 4095]], dtype=np.uint16)


def test_monochrome2_without_rescale_is_the_stored_value():
    out = to_analysis(RAW, pixel_format(header(), "f.dcm"), "f.dcm")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, RAW)


def test_monochrome1_is_inverted_within_bits_stored():
    out = to_analysis(RAW, pixel_format(header(PhotometricInterpretation="MONOCHROME1"), "f.dcm"), "f.dcm")
    np.testing.assert_array_equal(out, 4095 - RAW.astype(np.float32))


def test_rescale_slope_and_intercept():
    fmt = pixel_format(header(RescaleSlope="0.5", RescaleIntercept="-10"), "f.dcm")
    np.testing.assert_allclose(to_analysis(RAW, fmt, "f.dcm"), 0.5 * RAW - 10)


def test_signed_pixels_keep_their_sign_and_monochrome1_flips_around_the_signed_range():
    raw = np.array([[-2048, -1, 0], [1, 100, 2047]], dtype=np.int16)
    fmt = pixel_format(header(PixelRepresentation=1, PhotometricInterpretation="MONOCHROME1"), "f.dcm")
    np.testing.assert_array_equal(to_analysis(raw, fmt, "f.dcm"), -1 - raw.astype(np.float32))


def test_modality_lut_maps_values():
    lut = Dataset()
    lut.LUTDescriptor = [4, 100, 16]  # 4 entries, first stored value mapped is 100
    lut.LUTData = [0, 20, 30, 40]
    fmt = pixel_format(header(ModalityLUTSequence=[lut]), "f.dcm")
    raw = np.array([[99, 100, 101], [102, 103, 500]], dtype=np.uint16)  # below and above clamp
    np.testing.assert_array_equal(to_analysis(raw, fmt, "f.dcm"), [[0, 0, 20], [30, 40, 40]])


def test_rgb_becomes_luminance_with_a_warning():
    fmt = pixel_format(header(SamplesPerPixel=3, PhotometricInterpretation="RGB", BitsAllocated=8, BitsStored=8,
                              HighBit=7), "f.dcm")
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 2] = (10, 20, 30)
    with pytest.warns(UserWarning, match="converted to luminance"):
        out = to_analysis(rgb, fmt, "f.dcm")
    assert out.shape == (2, 3)
    assert out[0, 0] == pytest.approx(0.299 * 255, rel=1e-6)
    assert out[1, 2] == pytest.approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30, rel=1e-6)


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [({"BitsAllocated": 12}, InvalidStudyError, "must be 1, 8, 16 or 32"),
     ({"BitsStored": 17}, InvalidStudyError, "BitsStored is 17"),
     ({"PhotometricInterpretation": "PALETTE COLOR"}, UnsupportedError, "PALETTE COLOR"),
     ({"SamplesPerPixel": 3}, InvalidStudyError, "MONOCHROME2 with SamplesPerPixel 3"),
     ({"RescaleSlope": "0"}, InvalidStudyError, "RescaleSlope is 0"),
     ({"Rows": 0}, InvalidStudyError, "Rows is 0")],
)
def test_inconsistent_pixel_attributes_are_refused(changes, error, words):
    with pytest.raises(error, match=words):
        pixel_format(header(**changes), "f.dcm")


def _two_entry_lut(first: int, second: int) -> Dataset:
    """A Modality LUT that maps stored 0 to ``first`` and every value above to ``second``."""
    lut = Dataset()
    lut.LUTDescriptor = [2, 0, 16]
    lut.LUTData = [first, second]
    return lut


@pytest.mark.parametrize(
    ("changes", "top"),
    [({"RescaleIntercept": "-4095"}, "0"),  # 12 stored bits: 4095 - 4095
     ({"RescaleIntercept": "-5000"}, "-905"),
     ({"RescaleSlope": "-1"}, "0"),
     ({"PixelRepresentation": 1, "RescaleIntercept": "-2047"}, "0"),  # signed: the top stored value is 2047
     ({"ModalityLUTSequence": [_two_entry_lut(0, 0)]}, "0")],
)
def test_a_modality_mapping_under_which_no_value_is_above_zero_is_refused(changes, top):
    # Every pixel would be black or below: no value is light reaching the detector, and the
    # attenuation (-ln(I / white)) has no white to start from.
    with pytest.raises(InvalidStudyError, match=f"maps every stored value to {top} or less"):
        pixel_format(header(**changes), "f.dcm")


@pytest.mark.parametrize("slope", ["1e300", "-1e300"])
def test_a_rescale_beyond_float32_is_refused(slope):
    # Frames are float32: the values would be infinite.
    with pytest.raises(InvalidStudyError, match="out of float32 range"):
        pixel_format(header(RescaleSlope=slope), "f.dcm")


@pytest.mark.parametrize(
    ("changes", "bottom"),
    [({"RescaleIntercept": "4095"}, "4095"),  # 12 stored bits read as 4095 ... 8190
     ({"RescaleIntercept": "100000"}, "100000"),
     ({"RescaleSlope": "-1", "RescaleIntercept": "5000"}, "905"),
     ({"ModalityLUTSequence": [_two_entry_lut(10, 4095)]}, "10")],
)
def test_a_modality_mapping_that_lifts_black_above_zero_is_refused(changes, bottom):
    # The attenuation reads a value's ratio to the top of the range: under an offset of the
    # whole range the cement's ratio flattens (an intercept of 100000 hid all of it, every
    # frame ok).
    with pytest.raises(InvalidStudyError, match=f"maps the darkest stored value to {bottom}, above 0"):
        pixel_format(header(**changes), "f.dcm")


def test_a_rescale_that_moves_signed_values_to_start_at_zero_is_read():
    fmt = pixel_format(header(PixelRepresentation=1, RescaleIntercept="2048"), "f.dcm")
    assert fmt.value_range() == (0.0, 4095.0)


def test_a_rescale_that_leaves_one_value_above_zero_is_read():
    fmt = pixel_format(header(RescaleIntercept="-4094"), "f.dcm")
    assert fmt.value_range() == (-4094.0, 1.0)


def test_decoded_shape_must_match_the_header():
    with pytest.raises(InvalidStudyError, match="decoded frame has shape"):
        to_analysis(np.zeros((3, 3), np.uint16), pixel_format(header(), "f.dcm"), "f.dcm")


def test_native_ybr_full_422_is_read_as_its_luma(tmp_path):
    # Two pixels share one Cb and one Cr: 2 bytes a pixel, not 3. It was refused as Pixel
    # Data too short. Its luminance is its Y (Y = 0.299 R + 0.587 G + 0.114 B).
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    import vpimage.io

    rng = np.random.default_rng(0)
    n, rows, columns = 2, 16, 20
    luma = rng.integers(30, 220, (n, rows, columns), dtype=np.uint8)
    chroma = rng.integers(118, 138, (n, rows, columns // 2, 2), dtype=np.uint8)  # near grey: no RGB clipping
    packed = np.concatenate([luma.reshape(n, rows, columns // 2, 2), chroma], axis=-1)  # Y0 Y1 Cb Cr
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = rows, columns, n, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = packed.tobytes()
    path = tmp_path / "ybr422.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.warns(UserWarning, match="YBR_FULL_422 frames converted to luminance"):
        study = vpimage.io.open(path)
        frames = np.stack(list(study.iter_frames()))
    assert frames.shape == (n, rows, columns)
    assert np.abs(frames - luma).max() <= 2  # YBR -> RGB -> luminance rounds (as JPEG baseline's)


# The value range under a Modality LUT: only the entries the stored values can reach. A 12-bit
# study with an identity LUT of 65536 entries was read with white 65535 (the LUT's largest
# entry, which no stored value reaches) instead of 4095: the cement contrast shrank 16 times
# and the stop came 7 s late.


def every_value_header(**values) -> Dataset:
    """:func:`header` of one 12-bit row of 4096 pixels (every stored value once)."""
    return header(Rows=1, Columns=4096, **values)


def lut(first: int, data: np.ndarray) -> Dataset:
    """A Modality LUT item: ``data`` (16-bit entries) from stored value ``first`` on."""
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [data.size % 65536, first, 16])  # (0 entries means 65536)
    item.add_new("LUTData", "OW", data.astype("<u2").tobytes())
    return item


IDENTITY = np.arange(65536)
HUGE_BEYOND_12_BITS = np.where(np.arange(8192) <= 4095, np.arange(8192), 65000)
SHIFTED = np.where(np.arange(8192) <= 4095 - 100, 2 * np.arange(8192), 60000)  # stored 100 + i -> 2 i


@pytest.mark.parametrize(
    ("first", "data", "expected"),
    [(0, IDENTITY, (0.0, 4095.0)),  # as without the LUT
     (0, HUGE_BEYOND_12_BITS, (0.0, 4095.0)),
     (100, SHIFTED, (0.0, 2 * (4095.0 - 100)))],  # stored 0 ... 99 take the first entry
    ids=["identity 65536 entries", "huge entries beyond 4095", "first mapped value 100"],
)
def test_value_range_spans_only_the_lut_entries_the_stored_values_reach(first, data, expected):
    fmt = pixel_format(every_value_header(ModalityLUTSequence=[lut(first, data)]), "f.dcm")
    assert fmt.value_range() == expected


def test_an_identity_lut_gives_the_range_of_no_lut():
    with_lut = pixel_format(every_value_header(ModalityLUTSequence=[lut(0, IDENTITY)]), "f.dcm")
    assert with_lut.value_range() == pixel_format(every_value_header(), "f.dcm").value_range() == (0.0, 4095.0)


@pytest.mark.parametrize(
    ("first", "data"),
    [(0, IDENTITY), (0, HUGE_BEYOND_12_BITS), (100, SHIFTED),
     (100, np.array([0, 20, 30, 40])),  # shorter than the stored range: above it the last entry
     (0, np.concatenate([np.maximum(0, 2000 - np.abs(np.arange(4096) - 2000)), [65000]]))],  # peak mid-range
    ids=["identity", "huge beyond 4095", "first mapped 100", "short", "not monotonic"],
)
def test_value_range_is_what_the_pixels_are_mapped_to(first, data):
    # The range and the pixel mapping read the LUT the same way (DICOM PS3.3 C.11.1).
    fmt = pixel_format(every_value_header(ModalityLUTSequence=[lut(first, data)]), "f.dcm")
    every_stored_value = np.arange(4096, dtype=np.uint16).reshape(1, 4096)
    out = to_analysis(every_stored_value, fmt, "f.dcm")
    assert fmt.value_range() == (float(out.min()), float(out.max()))


def test_a_lut_whose_reachable_entries_are_all_black_is_refused():
    # Every stored value is below the first mapped value 5000: all take the first entry, 0.
    with pytest.raises(InvalidStudyError, match="maps every stored value to 0 or less"):
        pixel_format(every_value_header(ModalityLUTSequence=[lut(5000, np.array([0, 7, 9]))]), "f.dcm")


def test_a_signed_study_ignores_lut_entries_below_its_darkest_stored_value():
    # Stored -2048 ... 2047; the LUT starts at -4096: its first 2048 entries are out of reach.
    data = np.concatenate([np.full(2048, 65000), np.arange(4096)])
    item = lut(0, data)
    item.add_new("LUTDescriptor", "SS", [data.size, -4096, 16])
    fmt = pixel_format(every_value_header(PixelRepresentation=1, ModalityLUTSequence=[item]), "f.dcm")
    assert fmt.value_range() == (0.0, 4095.0)


def test_a_12_bit_study_with_an_identity_lut_keeps_white_at_4095(tmp_path):
    run = build_run(n=2, bits=12)
    path = write(run, tmp_path)
    ds = dcmread(path)
    ds.ModalityLUTSequence = [lut(0, IDENTITY)]
    ds.save_as(path, enforce_file_format=True)
    study = vpimage.io.open(path)
    assert study.white_level == 4095
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run))
