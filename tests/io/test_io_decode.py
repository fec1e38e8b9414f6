"""Decoding against the wg04 gold set: lossless syntaxes equal XA1_UNC exactly, lossy
ones stay within their stated tolerance, and the undecodable JPLY file is refused. Broken
frames (truncated JPEG, corrupt RLE) are refused naming the frame, never taken from a more
lenient decoder."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import vpimage.io
from io_runs import build_run, write
from vpimage.errors import InvalidStudyError, UnsupportedError

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


# --- Broken frames: a decoder's "malformed" is final, never bypassed by a lenient plugin ---


def _rewrite_frame(path, index, edit):
    """Re-encapsulate ``path`` with frame ``index`` replaced by ``edit(frame_bytes)``."""
    from pydicom import dcmread
    from pydicom.encaps import encapsulate, generate_frames

    ds = dcmread(path)
    frames = [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames))]
    frames[index] = edit(frames[index])
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    return path


def _refused_at_frame(path, index, error=InvalidStudyError) -> list[str]:
    """Both ways of reading frame ``index`` refuse it, naming the file and the frame."""
    study = vpimage.io.open(path)  # frame 0 is fine
    reasons = []
    for read in (lambda: list(study.iter_frames()), lambda: study.frame(index)):
        with pytest.raises(error) as info:
            read()
        assert info.value.path == str(path)
        assert f"frame {index}" in info.value.reason
        reasons.append(info.value.reason)
    return reasons


@pytest.mark.parametrize("syntax", ["jpeg-ls", "jpeg-lossless"])
def test_truncated_jpeg_frame_is_refused_not_decoded_by_a_lenient_plugin(tmp_path, syntax):
    # CharLS rejects the cut JPEG-LS frame and pylibjpeg returned half a picture for it;
    # pylibjpeg decodes a cut JPEG Lossless frame without a word.
    path = _rewrite_frame(write(build_run(n=4), tmp_path, "xa", syntax), 2, lambda f: f[: len(f) // 2])
    for reason in _refused_at_frame(path, 2):
        assert "truncated" in reason and "EOI" in reason


def test_jpeg_ls_frame_charls_rejects_is_not_taken_from_pylibjpeg(tmp_path):
    # Cut, but ending with EOI again: only CharLS's verdict tells that it is broken.
    path = _rewrite_frame(write(build_run(n=4), tmp_path, "xa", "jpeg-ls"), 2,
                          lambda f: f[: len(f) // 2] + b"\xff\xd9")
    for reason in _refused_at_frame(path, 2):
        assert "pyjpegls" in reason and "Invalid JPEG-LS stream" in reason
        assert "is not used" in reason


def test_a_frame_that_stops_the_stream_is_logged_by_the_instance_key_not_its_file_name(tmp_path, io_log):
    # The file named after the patient, as some exports name them: the debug line named it.
    path = _rewrite_frame(write(build_run(n=4), tmp_path, "xa", "jpeg-ls", name="Doe_Jane"), 2,
                          lambda f: f[: len(f) // 2])
    study = vpimage.io.open(path)
    with pytest.raises(InvalidStudyError, match="frame 2"):
        list(study.iter_frames())
    assert any(m.startswith(f"instance {study.key}: streaming with ") and " stopped at frame 2: " in m
               for m in io_log.messages), io_log.messages
    assert not any("Doe" in message for message in io_log.messages)


def _lengthen_last_segment(frame: bytes) -> bytes:
    """An RLE frame with a replicate run of 128 zeros before its last segment's data."""
    n_segments = struct.unpack("<L", frame[:4])[0]
    last = struct.unpack("<L", frame[4 * n_segments : 4 * n_segments + 4])[0]
    return frame[:last] + b"\x81\x00" + frame[last:]


def test_corrupt_rle_frame_padded_by_pydicom_is_refused(tmp_path):
    # pylibjpeg-rle panics on it (the next test: its message reaches stderr); pydicom's
    # decoder only warned of "non-conformant padding" and returned the frame shifted by 128
    # pixels.
    path = _rewrite_frame(write(build_run(n=4), tmp_path, "xa", "rle"), 2, _lengthen_last_segment)
    for reason in _refused_at_frame(path, 2):
        assert "RLE Lossless data is broken" in reason and "padding" in reason


def test_a_decoder_panic_costs_the_command_line_one_line_on_stderr(tmp_path):
    # The corrupt RLE frame above: pylibjpeg-rle's Rust panic prints its message (a backtrace
    # too, where RUST_BACKTRACE is set) to the process's stderr before the exception vpimage
    # reports. The user sees vpimage's one line naming the file, the panic too with -v.
    path = _rewrite_frame(write(build_run(n=4), tmp_path, "xa", "rle"), 2, _lengthen_last_segment)
    env = {**os.environ, "RUST_BACKTRACE": "1"}
    for verbose in ([], ["-v"]):
        out = subprocess.run([sys.executable, "-m", "vpimage", *verbose, "export", str(path), "--out",
                              str(tmp_path / "frames.npz")], capture_output=True, text=True, env=env)
        assert out.returncode == 3
        lines = out.stderr.strip().splitlines()
        assert lines[-1].startswith(f"vpimage: error: {path}: frame 2: the RLE Lossless data is broken")
        if verbose:
            assert any("panicked" in line for line in lines), out.stderr
        else:
            assert len(lines) == 1, out.stderr


@pytest.mark.parametrize("name", ["J2KR", "J2KI", "JPLL", "JLSL", "JLSN"])
def test_a_codestream_of_another_size_than_the_header_says_is_refused(wg04, tmp_path, name):
    # 512 x 2048 holds as many pixels as the 1024 x 1024 codestream: the decoders returned
    # its pixels reshaped to the header's size (a frame of nonsense, read as any other).
    from pydicom import dcmread

    ds = dcmread(wg04 / f"XA1_{name}.dcm")
    ds.Rows, ds.Columns = 512, 2048
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path)
    with pytest.raises(InvalidStudyError) as refused:
        vpimage.io.open(path)
    assert str(refused.value) == (f"{path}: the {ds.file_meta.TransferSyntaxUID.name} data is 1024 x 1024 px; "
                                  "(0028,0010) Rows and (0028,0011) Columns say 512 x 2048")


def _deeper_than_stored(tmp_path, syntax, frames, **rescale):
    """16-bit ``frames`` in ``syntax`` (a codestream, or native data) under a header that says
    12 bits stored; ``rescale``: more header values."""
    from pydicom import dcmread

    path = write(build_run(n=len(frames), bits=16), tmp_path, "xa", name=str(syntax)[-6:])
    ds = dcmread(path)
    if syntax.is_compressed:
        ds.compress(syntax, frames)
    else:
        ds.PixelData = frames.astype("<u2").tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
    ds.BitsStored, ds.HighBit = 12, 11
    for keyword, value in rescale.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("rescale", [{}, {"RescaleSlope": "0.5", "RescaleIntercept": "0"}],
                         ids=["stored values", "rescaled"])
@pytest.mark.parametrize("syntax", ["JPEGLSLossless", "JPEG2000Lossless", "ExplicitVRLittleEndian", "RLELossless"])
def test_data_deeper_than_bits_stored_is_read_while_its_values_fit(tmp_path, syntax, rescale):
    # (The stored values are checked, not what a rescale makes of them: 4093 * 0.5 is in range.)
    # Native and RLE data were masked to Bits Stored by pydicom, silently: 5000 read as 904, and
    # a whole study with Bits Stored set too low (9 for 10-bit data) read as bands wrapped at
    # every 512, and was analysed.
    import pydicom.uid

    frames = build_run(n=3, bits=12).frames  # values below 4096
    frames[2, 0, 0], frames[2, 3, 4] = 0, 5000  # beyond 12 bits: the decoders returned it, brighter than white
    path = _deeper_than_stored(tmp_path, getattr(pydicom.uid, syntax), frames, **rescale)
    study = vpimage.io.open(path)
    slope = float(rescale.get("RescaleSlope", 1))
    assert study.white_level == 4095 * slope
    np.testing.assert_array_equal(study.frame(1), frames[1] * np.float32(slope))
    for reason in _refused_at_frame(path, 2):
        assert "values from 0 to 5000, outside the 0..4095 of (0028,0101) Bits Stored 12" in reason


@pytest.mark.parametrize("syntax", ["ExplicitVRLittleEndian", "RLELossless"])
def test_an_overlay_declared_in_the_unused_bits_is_masked_out(tmp_path, syntax):
    # The retired way to store an overlay: a bit plane above Bits Stored, named by (60xx,0102)
    # Overlay Bit Position. Those bits are no pixel value.
    import pydicom.uid
    from pydicom import dcmread

    frames = build_run(n=2, bits=12).frames
    overlay = np.zeros(frames.shape, frames.dtype)
    overlay[:, 2:4, :] = 1 << 15  # a line of graphics
    path = _deeper_than_stored(tmp_path, getattr(pydicom.uid, syntax), frames | overlay)
    ds = dcmread(path)
    ds.add_new(0x60000102, "US", 15)
    ds.save_as(path)
    study = vpimage.io.open(path)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), frames.astype(np.float32))


def test_rle_file_with_rows_larger_than_its_data_is_refused_as_broken(wg04, tmp_path):
    from pydicom import dcmread

    ds = dcmread(wg04 / "XA1_RLE.dcm")
    ds.Rows += 16
    path = tmp_path / "rows.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InvalidStudyError) as info:
        vpimage.io.open(path)
    assert info.value.path == str(path)
    assert "frame 0" in info.value.reason and "data is broken" in info.value.reason
    assert not isinstance(info.value, UnsupportedError)  # broken, not beyond the decoders


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
def test_plugin_that_cannot_handle_the_data_still_hands_over(wg04, reference, monkeypatch):
    import vpimage.io._decode as decode

    real_pixel_array = decode.pixel_array

    def charls_lacks_it(src, **kwargs):
        if kwargs["decoding_plugin"] == "pyjpegls":
            raise RuntimeError("Unable to decode as exceptions were raised by all available plugins:\n  "
                               "pyjpegls: Decoding error: The JPEG-LS stream is encoded with a bit depth "
                               "that is not supported by the CharLS decoder")
        return real_pixel_array(src, **kwargs)

    monkeypatch.setattr(decode, "pixel_array", charls_lacks_it)
    np.testing.assert_array_equal(vpimage.io.open(wg04 / "XA1_JLSL.dcm").frame(0), reference)


@pytest.mark.parametrize(("error", "cannot_handle"), [
    (NotImplementedError("Pillow does not support 'JPEG Extended' for samples with 12-bit precision"), True),
    (RuntimeError("pillow: Pillow cannot decode 12-bit multi-sample data correctly"), True),
    (RuntimeError("pydicom: Unable to decode RLE encoded pixel data with 12 bits allocated"), True),
    (RuntimeError("libjpeg error code '-1040': not supported by the selected profile"), True),
    (ImportError("No module named 'jpeg_ls'"), True),
    (RuntimeError("pyjpegls: Decoding error: Invalid JPEG-LS stream, the encoded bit stream contains "
                  "a general structural problem"), False),
    (RuntimeError("pylibjpeg: libjpeg error code '-1025' returned from Decode(): Stream run out of data"), False),
    (RuntimeError("pydicom: The amount of decoded RLE segment data doesn't match the expected amount"), False),
    (RuntimeError("index out of bounds: the len is 18432 but the index is 18432"), False),
])
def test_failures_are_told_apart_cannot_handle_from_broken(error, cannot_handle):
    from vpimage.io._decode import _cannot_handle

    assert _cannot_handle(error) is cannot_handle
