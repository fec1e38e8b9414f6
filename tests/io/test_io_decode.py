"""Decoding against the wg04 gold set: lossless syntaxes equal XA1_UNC exactly, lossy
ones stay within their stated tolerance, and the undecodable JPLY file is refused."""

from __future__ import annotations

import numpy as np
import pytest

import vpimage.io
from vpimage.errors import UnsupportedError

# File -> largest allowed absolute difference from XA1_UNC, grey levels (wg04 README).
TOLERANCE = {"RLE": 0, "JPLL": 0, "JLSL": 0, "J2KR": 0, "JLSN": 4, "J2KI": 8}


@pytest.fixture(scope="module")
def reference(wg04):
    from pydicom import dcmread

    ds = dcmread(wg04 / "XA1_UNC.dcm")
    return ds.pixel_array.astype(np.float32)


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
def test_uncompressed_reference_reads_as_stored(wg04, reference):
    study = vpimage.io.open(wg04 / "XA1_UNC.dcm")
    assert (study.n_frames, study.rows, study.columns) == (1, 1024, 1024)
    frame = study.frame(0)
    assert frame.dtype == np.float32
    np.testing.assert_array_equal(frame, reference)
    assert 0 <= frame.min() and frame.max() <= 2**10 - 1  # 10 bits stored
    assert study.photometric == "MONOCHROME2"
    assert study.transfer_syntax == "Explicit VR Little Endian"
    assert study.sop_class == "Secondary Capture Image Storage"


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
@pytest.mark.parametrize("name", list(TOLERANCE))
def test_compressed_variants_match_the_reference(wg04, reference, name):
    study = vpimage.io.open(wg04 / f"XA1_{name}.dcm")
    frame = next(study.iter_frames())
    difference = np.abs(frame - reference)
    assert difference.max() <= TOLERANCE[name]
    if TOLERANCE[name]:  # a lossy file that decoded to the reference would be a wrong file
        assert difference.max() > 0
    np.testing.assert_array_equal(study.frame(0), frame)


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
def test_undecodable_jpeg_extended_is_refused_naming_file_and_reason(wg04):
    with pytest.raises(UnsupportedError) as info:
        vpimage.io.open(wg04 / "XA1_JPLY.dcm")
    assert info.value.path.endswith("XA1_JPLY.dcm")
    assert "JPEG Extended" in info.value.reason and "no pixel decoder" in info.value.reason


def test_uncalibrated_single_frame_says_so(wg04):
    with pytest.warns(UserWarning, match="no pixel spacing"):
        study = vpimage.io.open(wg04 / "XA1_UNC.dcm")
    assert study.geometry.mm_per_px is None and study.geometry.calibration == "none"
    assert study.geometry.view == "unknown"  # no positioner angles in the file
    np.testing.assert_array_equal(study.timing.time_s, [0.0])
    assert study.timing.source == "single frame"


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
def test_circular_image_intensifier_field_is_found_from_the_pixels(wg04):
    geometry = vpimage.io.open(wg04 / "XA1_UNC.dcm").geometry
    assert geometry.fov_source == "pixels"
    mask = geometry.fov_mask
    assert mask.shape == (1024, 1024) and mask.dtype == bool
    # The circle with the mask's area and centroid must coincide with the mask.
    rows, cols = np.nonzero(mask)
    centre_r, centre_c = rows.mean(), cols.mean()
    radius = np.sqrt(mask.sum() / np.pi)
    r, c = np.mgrid[0:1024, 0:1024]
    circle = (r - centre_r) ** 2 + (c - centre_c) ** 2 <= radius**2
    iou = (mask & circle).sum() / (mask | circle).sum()
    assert iou > 0.99
    assert 400 < radius <= 520  # the intensifier circle nearly fills the 1024 px frame
    assert not mask[0, 0] and not mask[-1, -1] and mask[512, 512]  # black corners


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
@pytest.mark.parametrize("name", ["JPLL", "JLSL", "J2KR"])
def test_gdcm_is_the_fallback_where_it_is_the_only_decoder(wg04, reference, monkeypatch, name):
    import vpimage.io._decode as decode

    real_decoder, real_pixel_array, used = decode.get_decoder, decode.pixel_array, set()

    class OnlyGdcm:  # pydicom's decoder as it looks without pylibjpeg, pyjpegls and Pillow
        def __init__(self, uid):
            self.available_plugins = [p for p in real_decoder(uid).available_plugins if p == "gdcm"]

    def spy(src, **kwargs):
        used.add(kwargs["decoding_plugin"])
        return real_pixel_array(src, **kwargs)

    monkeypatch.setattr(decode, "get_decoder", OnlyGdcm)
    monkeypatch.setattr(decode, "pixel_array", spy)
    np.testing.assert_array_equal(vpimage.io.open(wg04 / f"XA1_{name}.dcm").frame(0), reference)
    assert used == {"gdcm"}


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
@pytest.mark.parametrize("name", ["JLSL", "JLSN"])
def test_jpeg_ls_is_decoded_by_charls_first_and_both_decoders_agree(wg04, name):
    from pydicom import dcmread
    from pydicom.pixels import pixel_array

    import vpimage.io._decode as decode

    path = wg04 / f"XA1_{name}.dcm"
    study = vpimage.io.open(path)
    uid = dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert decode._plugins(uid, path)[:2] == ["pyjpegls", "pylibjpeg"]
    # The speed choice must not change a pixel: CharLS and pylibjpeg's libjpeg agree.
    for plugin in ("pyjpegls", "pylibjpeg"):
        np.testing.assert_array_equal(pixel_array(str(path), decoding_plugin=plugin), study.frame(0))
