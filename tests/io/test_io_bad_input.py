"""Bad input is refused with a vpimage error naming the file and the reason."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from io_runs import build_run, expected_frames, write
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.encaps import encapsulate, generate_frames
from pydicom.tag import Tag
from pydicom.uid import UID, GrayscaleSoftcopyPresentationStateStorage

import vpimage.io
from vpimage.cli import main
from vpimage.errors import InvalidStudyError, UnsupportedError


@pytest.fixture
def valid(tmp_path):
    return write(build_run(n=4), tmp_path, "xa", name="valid")


def edited(path, out, **changes):
    ds = dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            del ds[keyword]
        else:
            setattr(ds, keyword, value)
    ds.save_as(out, enforce_file_format=True)
    return out


def refused(path, error=InvalidStudyError) -> str:
    with pytest.raises(error) as info:
        study = vpimage.io.open(path)
        list(study.iter_frames())
    assert info.value.path == str(path)
    return info.value.reason


def test_missing_file(tmp_path):
    assert refused(tmp_path / "nothing.dcm") == "does not exist"


def test_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("not an image")
    assert "is not a DICOM file: no 'DICM' prefix" in refused(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    assert refused(path) == "is empty (0 bytes)"


@pytest.mark.parametrize("keep", [0.2, 0.6, 0.99])
def test_truncated_file(valid, tmp_path, keep):
    data = valid.read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * keep)])
    assert "truncated" in refused(path)


def test_an_object_without_pixel_data_is_not_an_image(valid, tmp_path):
    presentation_state = edited(valid, tmp_path / "x.dcm", PixelData=None,
                                SOPClassUID=GrayscaleSoftcopyPresentationStateStorage)
    assert "without (7FE0,0010) Pixel Data, not an image" in refused(presentation_state, UnsupportedError)


def test_an_image_without_pixel_data_is_damaged(valid, tmp_path):
    reason = refused(edited(valid, tmp_path / "x.dcm", PixelData=None))
    assert reason == ("is a X-Ray Angiographic Image Storage object without (7FE0,0010) Pixel Data: "
                      "the file is cut short or damaged")


def test_short_pixel_data(valid, tmp_path):
    short = dcmread(valid).PixelData[:-200]
    assert "Pixel Data has" in refused(edited(valid, tmp_path / "x.dcm", PixelData=short))


# 2 of the 4 frames would analyse half the run and drop the rest unseen.
@pytest.mark.parametrize(
    ("frames", "words"), [(0, "must be in"), (9, "Pixel Data has"), (2, "Pixel Data has"), (-2, "must be in")]
)
def test_wrong_number_of_frames(valid, tmp_path, frames, words):
    assert words in refused(edited(valid, tmp_path / "x.dcm", NumberOfFrames=frames))


def test_pixel_data_longer_than_bits_allocated_says(valid, tmp_path):
    reason = refused(edited(valid, tmp_path / "x.dcm", BitsAllocated=8, BitsStored=8, HighBit=7))
    assert "Pixel Data has" in reason and "at 8 bits need" in reason


@pytest.mark.parametrize(
    ("frames", "offset_table", "words"),
    [
        (2, True, "the Basic Offset Table lists 4 frames; (0028,0008) Number of Frames is 2"),
        (6, True, "the Basic Offset Table lists 4 frames; (0028,0008) Number of Frames is 6"),
        (6, False, "(7FE0,0010) Pixel Data holds 4 fragments, too few for 6 frames"),
    ],
)
def test_compressed_frames_other_than_number_of_frames(tmp_path, frames, offset_table, words):
    path = write(build_run(n=4), tmp_path, "xa", "jpeg-ls")
    ds = dcmread(path)
    ds.PixelData = encapsulate(list(generate_frames(ds.PixelData, number_of_frames=4)), has_bot=offset_table)
    ds.NumberOfFrames = frames
    ds.save_as(path, enforce_file_format=True)
    assert refused(path) == words


@pytest.mark.parametrize("syntax", ["jpeg-ls", "jpeg-lossless", "j2k-lossless", "rle"])
def test_compressed_frames_without_offset_table_more_than_number_of_frames_are_refused(tmp_path, syntax):
    # One fragment a frame, no Basic Offset Table (optional, and common): pydicom splits the
    # fragments at the codestreams' ends and read only the 3 frames the header says, the
    # fourth lost unseen (RLE failed later, when frame 1 was decoded).
    path = write(build_run(n=4), tmp_path, "xa", syntax)
    ds = dcmread(path)
    ds.PixelData = encapsulate(list(generate_frames(ds.PixelData, number_of_frames=4)), has_bot=False)
    ds.NumberOfFrames = 3
    ds.save_as(path, enforce_file_format=True)
    name = UID(ds.file_meta.TransferSyntaxUID).name
    assert refused(path) == (
        "(7FE0,0010) Pixel Data holds 4 fragments, one a frame in RLE Lossless; (0028,0008) Number of Frames is 3"
        if syntax == "rle" else
        f"(7FE0,0010) Pixel Data holds 4 frames: 4 of its 4 fragments begin a {name} codestream; "
        "(0028,0008) Number of Frames is 3")


@pytest.mark.parametrize("syntax", ["jpeg-ls", "jpeg-lossless", "j2k-lossless"])
def test_compressed_frames_in_several_fragments_without_offset_table_are_read_whole(tmp_path, syntax):
    run = build_run(n=4)
    path = write(run, tmp_path, "xa", syntax)
    ds = dcmread(path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=4))
    ds.PixelData = encapsulate(frames, fragments_per_frame=2, has_bot=False)  # 8 fragments, 4 frames
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(np.stack(list(vpimage.io.open(path).iter_frames())), expected_frames(run))


def test_compressed_samples_deeper_than_bits_allocated_are_refused_not_cut(tmp_path):
    path = write(build_run(n=2), tmp_path, "xa", "jpeg-ls")
    precision = dcmread(path).BitsStored  # the JPEG-LS data's own sample precision
    reason = refused(edited(path, tmp_path / "x.dcm", BitsAllocated=8, BitsStored=8, HighBit=7))
    assert reason == f"the JPEG-LS Lossless Image Compression data has {precision} bits a sample; (0028,0100) Bits Allocated is 8: values would be cut"


@pytest.mark.parametrize("spacing", [["0", "0"], ["-0.15", "-0.15"]])
def test_zero_or_negative_spacing(valid, tmp_path, spacing):
    assert "ImagerPixelSpacing" in refused(edited(valid, tmp_path / "x.dcm", ImagerPixelSpacing=spacing))


def test_source_beyond_detector(valid, tmp_path):
    assert "exceeds" in refused(edited(valid, tmp_path / "x.dcm", DistanceSourceToPatient="2000"))


@pytest.mark.parametrize(("rows", "columns"), [(60000, 60000), (0, 60)])
def test_absurd_sizes(valid, tmp_path, rows, columns):
    reason = refused(edited(valid, tmp_path / "x.dcm", Rows=rows, Columns=columns))
    assert "absurd" in reason or "must be in" in reason


def test_palette_colour_is_unsupported(valid, tmp_path):
    reason = refused(edited(valid, tmp_path / "x.dcm", PhotometricInterpretation="PALETTE COLOR"), UnsupportedError)
    assert "PALETTE COLOR" in reason


def test_corrupted_compressed_stream(tmp_path):
    path = write(build_run(n=3), tmp_path, "xa", "jpeg-ls")
    ds = dcmread(path)
    fragments = list(generate_frames(ds.PixelData, number_of_frames=3))
    broken = bytes(fragments[1][:20]) + bytes(len(fragments[1]) - 20)  # frame 1 zeroed after its header
    ds.PixelData = encapsulate([fragments[0], broken, fragments[2]])
    ds.save_as(path, enforce_file_format=True)
    study = vpimage.io.open(path)  # frame 0 is fine
    assert study.frame(0).shape == (48, 60)
    with pytest.raises(InvalidStudyError, match="frame 1") as info:
        list(study.iter_frames())
    assert info.value.path == str(path)


def test_error_messages_carry_no_patient_identity(valid, tmp_path):
    path = edited(valid, tmp_path / "x.dcm", PatientName="Doe^Jane", PatientID="ID-4711", NumberOfFrames=0)
    with pytest.raises(InvalidStudyError) as info:
        vpimage.io.open(path)
    assert "Doe" not in str(info.value) and "4711" not in str(info.value)


def test_a_study_shows_the_names_in_a_text_that_hold_its_patient_s_identity_by_its_key(valid, tmp_path):
    # What the command line does to a warning before it shows it (tests/test_cli_analyze.py).
    folder = tmp_path / "ANN_LEE_19400101"
    folder.mkdir()
    path = edited(valid, folder / "Lee.Ann.dcm", PatientName="Lee^Ann", PatientBirthDate="19400101")
    study = vpimage.io.open(path)
    shown = f"study_{study.key}"
    assert study.shown_text(f"{path}: no pixel spacing") == f"{tmp_path / shown / shown}.dcm: no pixel spacing"
    # A name next to either separator; the words of the message and names without identity stay.
    assert study.shown_text("C:\\scans\\ann_lee\\x.dcm: annotation channel") == (
        f"C:\\scans\\{shown}\\x.dcm: annotation channel")
    assert study.shown_text("/data/plain/x.dcm: the study") == "/data/plain/x.dcm: the study"
    # Another patient's study (the phantom's) leaves these names as they are.
    assert vpimage.io.open(valid).shown_text(f"{path}: x") == f"{path}: x"


def raw_text(path, out, keyword, text: bytes, vr: str | None = None):
    """``path`` saved as ``out`` with ``keyword``'s value the bytes ``text`` as they are, as
    ``vr`` (default: its own) (a corrupted or mislabelled element, which pydicom would refuse
    to set)."""
    ds = dcmread(path)
    tag = Tag(keyword)
    vr = vr or (ds[tag].VR if tag in ds else "DS")
    ds[tag] = RawDataElement(tag, vr, len(text), text, 0, ds.original_encoding[0], ds.original_encoding[1])
    ds.save_as(out)  # (its file meta as read: enforcing the file format would decode the UIDs)
    return out


def test_a_header_value_holding_a_name_or_an_id_is_never_quoted(valid, tmp_path):
    # A mislabelled element (a patient id where the detector pitch belongs) is refused by its
    # keyword, with the length of its text, not the text; an implausible frame time that is
    # not a number is ignored with a warning that does not quote it either.
    reason = refused(raw_text(valid, tmp_path / "x.dcm", "ImagerPixelSpacing", b"ID-4711 "))
    assert reason == "ImagerPixelSpacing (a text of 7 characters, not shown) is not a number"
    with pytest.warns(UserWarning) as record:
        vpimage.io.open(raw_text(valid, tmp_path / "y.dcm", "FrameTime", b"Doe^Jane"))
    messages = [str(w.message) for w in record]
    assert any("FrameTime (a text of 8 characters, not shown) ignored" in m for m in messages), messages
    assert not any("Doe" in m for m in messages)


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS")  # (pydicom's, when the count is read)
@pytest.mark.parametrize(
    ("keyword", "text", "error", "reason"),
    [
        ("NumberOfFrames", b"Doe^Jane", InvalidStudyError,
         "NumberOfFrames (a text of 8 characters, not shown) is not an integer"),
        ("PhotometricInterpretation", b"Doe^Jane", UnsupportedError,
         "PhotometricInterpretation (a text of 8 characters, not shown) is not supported"),
        ("ShutterShape", b"Doe^Jane", InvalidStudyError,
         "ShutterShape (a text of 8 characters, not shown) is not RECTANGULAR, CIRCULAR or POLYGONAL"),
        # A term DICOM defines is no patient's text: named, which says more.
        ("PhotometricInterpretation", b"HSV ", UnsupportedError, "PhotometricInterpretation 'HSV' is not supported"),
        ("ShutterShape", b"BITMAP", InvalidStudyError,
         "ShutterShape 'BITMAP' is not RECTANGULAR, CIRCULAR or POLYGONAL"),
    ],
)
def test_a_refused_coded_value_is_named_only_where_dicom_defines_it(valid, tmp_path, keyword, text, error, reason):
    assert refused(raw_text(valid, tmp_path / "x.dcm", keyword, text), error) == reason


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # (pydicom's, when the name is read)
@pytest.mark.parametrize(("uid", "shown"), [(b"Doe^Jane", "(a text of 8 characters, not shown)"),
                                            (b"1.2.3.4\0", "1.2.3.4")])
def test_an_unknown_sop_class_is_shown_as_its_uid_only_where_it_is_one(valid, tmp_path, uid, shown):
    assert vpimage.io.open(raw_text(valid, tmp_path / "x.dcm", "SOPClassUID", uid)).sop_class == shown


@pytest.mark.parametrize(("keyword", "name"), [("PatientName", "(0010,0010) Patient's Name"),
                                               ("SOPInstanceUID", "(0008,0018) SOP Instance UID"),
                                               ("SOPClassUID", "(0008,0016) SOP Class UID")])
def test_an_element_whose_bytes_do_not_fit_its_vr_is_refused_naming_it(valid, tmp_path, keyword, name):
    # pydicom decodes a value when it is first asked for, and raised its own error (quoting the
    # bytes) outside vpimage's guards: a traceback on the command line.
    path = raw_text(valid, tmp_path / "x.dcm", keyword, b"\x01\x02\x03", vr="US")
    assert refused(path) == f"the file is corrupt: {name} (US, 3 bytes) cannot be decoded"


def test_an_element_that_cannot_be_decoded_costs_the_command_line_one_line(valid, tmp_path, capsys):
    path = raw_text(valid, tmp_path / "x.dcm", "PatientName", b"\x01\x02\x03", vr="US")
    assert main(["info", str(path)]) == 3
    assert capsys.readouterr().err.splitlines() == [
        f"vpimage: error: {path}: the file is corrupt: (0010,0010) Patient's Name (US, 3 bytes) cannot be decoded"]


def test_a_name_too_long_for_the_system_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / ("a" * 300 + ".dcm")  # (a name is at most 255 bytes on common file systems)
    shown = f"{str(path)[:60]}...({len(str(path))} characters)"
    for call in (vpimage.io.open, vpimage.io.discover):
        with pytest.raises(InvalidStudyError) as info:
            call(path)
        assert (info.value.path, info.value.reason) == (shown, f"cannot be looked up: {os.strerror(errno.ENAMETOOLONG)}")
    assert main(["info", str(path)]) == 3
    assert capsys.readouterr().err.splitlines() == [
        f"vpimage: error: {shown}: cannot be looked up: {os.strerror(errno.ENAMETOOLONG)}"]


def test_non_square_pixels_are_unsupported(valid, tmp_path):
    reason = refused(edited(valid, tmp_path / "x.dcm", ImagerPixelSpacing=["0.15", "0.30"]), UnsupportedError)
    assert "non-square" in reason


def test_empty_folder(tmp_path):
    (tmp_path / ".hidden").write_text("a hidden file does not count")
    assert refused(tmp_path) == "holds no file"


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.warns(UserWarning, match="1 file\\(s\\) skipped: readme.txt"):
        assert "holds no readable DICOM image (1 file(s) unreadable)" in refused(tmp_path)


def test_monochrome1_with_rescale_inverts_within_the_rescaled_range(valid, tmp_path):
    path = edited(valid, tmp_path / "x.dcm", PhotometricInterpretation="MONOCHROME1", RescaleSlope="2",
                  RescaleIntercept="-100")
    stored = dcmread(path).pixel_array[0].astype(np.float32)
    lo, hi = -100.0, 2 * (2**12 - 1) - 100.0  # rescaled range of 12 stored bits
    study = vpimage.io.open(path)
    np.testing.assert_array_equal(study.frame(0), lo + hi - (2 * stored - 100))
    assert study.white_level == hi


def test_a_rescale_that_leaves_no_light_is_refused_when_opened(valid, tmp_path):
    # 12 stored bits less 5000: every analysis value is negative (a CT-style intercept on an
    # XA image); the study is refused on opening, not failed in the analysis.
    path = edited(valid, tmp_path / "x.dcm", RescaleIntercept="-5000")
    assert refused(path) == ("the RescaleSlope 1 / RescaleIntercept -5000 maps every stored value to -905 or less: "
                             "no pixel can be read as light reaching the detector")


def _cut_points(data: bytes) -> list[int]:
    """Byte counts to keep: inside the header's elements, inside the Pixel Data element's
    own header and just past it, and half-way through the pixels."""
    pixels = data.rindex(b"\xe0\x7f\x10\x00")  # (7FE0,0010), little endian
    return [pixels // 2 + 1, pixels // 2 + 7, pixels + 3, pixels + 40, len(data) // 2]


@pytest.mark.parametrize("name", ["XA1_UNC.dcm", "XA1_RLE.dcm", "XA1_JLSL.dcm", "XA1_J2KR.dcm"])
def test_a_real_file_cut_anywhere_is_refused_as_truncated(wg04, tmp_path, name):
    data = (wg04 / name).read_bytes()
    for keep in _cut_points(data):
        path = tmp_path / f"{keep}.dcm"
        path.write_bytes(data[:keep])
        reason = refused(path)
        assert "truncated" in reason, (keep, reason)


@pytest.mark.filterwarnings("ignore:.*no pixel spacing")
def test_a_file_cut_only_in_its_trailing_padding_still_opens(wg04, tmp_path):
    # (FFFC,FFFC) Data Set Trailing Padding follows the pixels of XA1_UNC: its bytes mean
    # nothing, and the image is whole without them.
    data = (wg04 / "XA1_UNC.dcm").read_bytes()
    assert data.rindex(b"\xfc\xff\xfc\xff") > data.rindex(b"\xe0\x7f\x10\x00")
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:-10])
    frames = np.stack(list(vpimage.io.open(path).iter_frames()))
    reference = np.stack(list(vpimage.io.open(wg04 / "XA1_UNC.dcm").iter_frames()))
    np.testing.assert_array_equal(frames, reference)
