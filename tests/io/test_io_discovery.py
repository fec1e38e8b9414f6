"""Discovery: folders, DICOMDIRs (resolved safely) and runs of one series in time order."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from io_runs import build_run, expected_frames, write
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.fileset import FileSet
from pydicom.tag import Tag
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage

import vpimage.io
from vpimage.errors import ArgumentError, InvalidStudyError


def media(tmp_path, run):
    """A DICOMDIR file set (pydicom's FileSet) of ``run`` written as an XA series."""
    series = write(run, tmp_path, "xa-series", name="source")
    file_set = FileSet()
    for path in sorted(series.iterdir()):
        file_set.add(path)
    file_set.write(tmp_path / "media")
    return tmp_path / "media"


def test_dicomdir_file_and_its_folder_give_the_run(tmp_path):
    run = build_run(n=4, jittered=True)
    root = media(tmp_path, run)
    for target in (root / "DICOMDIR", root):
        study = vpimage.io.open(target)
        np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run))
        np.testing.assert_allclose(study.timing.time_s, run.time_s, atol=1e-6)
        assert study.geometry.mm_per_px == pytest.approx(run.mm_per_px, rel=1e-9)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # pydicom on writing the hostile '..'
def test_dicomdir_never_follows_a_path_outside_its_folder(tmp_path):
    run = build_run(n=3)
    root = media(tmp_path, run)
    outsider = write(build_run(n=1, seed=9), tmp_path, "xa", name="outsider")  # beside the media, not in it
    dicomdir = dcmread(root / "DICOMDIR")
    images = [r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
    images[0].ReferencedFileID = ["..", outsider.name]
    dicomdir.save_as(root / "DICOMDIR", enforce_file_format=True)
    with pytest.warns(UserWarning, match=f"1 outside the DICOMDIR's folder \\(not followed\\): '../{outsider.name}'"):
        study = vpimage.io.open(root / "DICOMDIR")
    assert study.n_frames == 2  # the two images still referenced inside
    np.testing.assert_array_equal(study.frame(0), expected_frames(run)[1])


def test_a_dicomdir_that_lists_a_file_twice_gives_it_once(tmp_path):
    run = build_run(n=3)
    root = media(tmp_path, run)
    dicomdir = dcmread(root / "DICOMDIR")
    images = [r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
    images[2].ReferencedFileID = images[1].ReferencedFileID
    dicomdir.save_as(root / "DICOMDIR", enforce_file_format=True)
    study = vpimage.io.open(root / "DICOMDIR")
    assert study.n_frames == 2  # (not refused as one instance in two files)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run)[:2])


def _image_files(root):
    records = dcmread(root / "DICOMDIR").DirectoryRecordSequence
    return [root.joinpath(*r.ReferencedFileID) for r in records if r.DirectoryRecordType == "IMAGE"]


def test_a_dicomdir_whose_files_are_all_missing_is_refused_in_one_line(tmp_path):
    root = media(tmp_path, build_run(n=3))
    for path in _image_files(root):
        path.unlink()
    for target in (root, root / "DICOMDIR"):
        with pytest.raises(InvalidStudyError, match="none of its 3 referenced files can be read: 3 missing") as info:
            vpimage.io.open(target)
        assert info.value.path == str(root / "DICOMDIR")


def test_a_dicomdir_with_some_files_missing_names_them_in_one_warning(tmp_path, recwarn):
    run = build_run(n=3)
    root = media(tmp_path, run)
    gone = _image_files(root)[1]
    gone.unlink()
    study = vpimage.io.open(root)
    (warning,) = [w for w in recwarn if "referenced files" in str(w.message)]
    assert f"1 missing: '{gone.relative_to(root)}'" in str(warning.message)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run)[[0, 2]])
    assert study.skipped_files == (f"{gone.relative_to(root)} (missing)",)


def test_a_truncated_dicomdir_in_a_folder_is_refused_as_when_named(tmp_path):
    root = media(tmp_path, build_run(n=3))
    data = (root / "DICOMDIR").read_bytes()
    (root / "DICOMDIR").write_bytes(data[: len(data) // 2])
    reasons = []
    for target in (root, root / "DICOMDIR"):
        with pytest.raises(InvalidStudyError) as info:
            vpimage.io.open(target)
        reasons.append(info.value.reason)
    assert reasons[0] == reasons[1] and "truncated" in reasons[0]


def test_folder_skips_unreadable_and_non_image_files_with_a_report(tmp_path):
    run = build_run(n=3)
    folder = write(run, tmp_path, "xrf-series")
    (folder / "notes.txt").write_text("not DICOM")
    (folder / ".hidden").write_bytes(b"\0")
    report = dcmread(folder / "0001.dcm")
    del report.PixelData
    report.SOPClassUID = report.file_meta.MediaStorageSOPClassUID = GrayscaleSoftcopyPresentationStateStorage
    report.save_as(folder / "report.dcm", enforce_file_format=True)
    with pytest.warns(UserWarning, match="1 file\\(s\\) skipped: notes.txt"):
        study = vpimage.io.open(folder)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run))
    (skipped,) = study.skipped_files  # (the presentation state is no image: not a skipped frame)
    assert skipped.startswith("notes.txt (is not a DICOM file: no 'DICM' prefix")


def test_an_image_cut_short_before_its_pixel_data_is_a_skipped_file_not_a_report(tmp_path):
    run = build_run(n=3)
    folder = write(run, tmp_path, "xrf-series")
    data = (folder / "0002.dcm").read_bytes()
    pixel_data_tag = bytes.fromhex("e07f1000")  # (7FE0,0010), little endian
    (folder / "0002.dcm").write_bytes(data[: data.rindex(pixel_data_tag)])
    expected = "0002.dcm (is a X-Ray Radiofluoroscopic Image Storage object without (7FE0,0010) Pixel Data"
    with pytest.warns(UserWarning, match=re.escape(expected)):
        study = vpimage.io.open(folder)
    (skipped,) = study.skipped_files
    assert skipped.startswith(expected)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run)[[0, 2]])
    with pytest.warns(UserWarning, match=re.escape(expected)):
        (source,) = vpimage.io.discover(folder)
    assert len(source.files) == 2
    with pytest.raises(InvalidStudyError, match="cut short"):
        vpimage.io.open(folder / "0002.dcm")


@pytest.mark.parametrize(("keyword", "name"), [
    ("SeriesInstanceUID", "(0020,000E) Series Instance UID"),  # (grouped by it)
    ("StudyInstanceUID", "(0020,000D) Study Instance UID"),  # (checked alike)
    ("AcquisitionDateTime", "(0008,002A) Acquisition DateTime"),  # (ordered by it)
    ("InstanceNumber", "(0020,0013) Instance Number"),
])
def test_an_instance_with_an_element_that_cannot_be_decoded_is_a_skipped_file(tmp_path, keyword, name):
    # pydicom decodes a value when it is first asked for: these raised its own error outside
    # vpimage's guards, failing the folder (and discover) with a traceback.
    run = build_run(n=3)
    folder = write(run, tmp_path, "xa-series")
    ds = dcmread(folder / "0002.dcm")
    ds[Tag(keyword)] = RawDataElement(Tag(keyword), "US", 3, b"\x01\x02\x03", 0, False, True)
    ds.save_as(folder / "0002.dcm")
    expected = f"0002.dcm (the file is corrupt: {name} (US, 3 bytes) cannot be decoded)"
    with pytest.warns(UserWarning, match=re.escape(f"1 file(s) skipped: {expected}")):
        study = vpimage.io.open(folder)
    assert study.skipped_files == (expected,)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run)[[0, 2]])
    with pytest.warns(UserWarning, match=re.escape(f"1 file(s) skipped: {expected}")):
        (source,) = vpimage.io.discover(folder)
    assert sorted(path.name for path in source.files) == ["0001.dcm", "0003.dcm"]


def test_a_skipped_object_is_logged_by_its_key_not_by_a_file_name_that_may_hold_the_patient_s(tmp_path, io_log):
    # Warnings name files as the study shows them (Study.shown_text: by its key where the name
    # holds the patient's); log lines are shown as they are, and named the file.
    image = write(build_run(n=2), tmp_path, "xa", name="Doe_Jane_run")
    report = dcmread(image)
    del report.PixelData
    report.SOPClassUID = report.file_meta.MediaStorageSOPClassUID = GrayscaleSoftcopyPresentationStateStorage
    report.SOPInstanceUID = report.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.99.1"
    report.PatientName = "Doe^Jane"
    report.save_as(tmp_path / "Doe_Jane_report.dcm", enforce_file_format=True)
    line = (f"skipping instance {hashlib.sha256(b'1.2.826.0.1.3680043.99.1').hexdigest()[:12]} "
            "(Grayscale Softcopy Presentation State Storage): a DICOM object without pixel data")
    for read in (vpimage.io.open, vpimage.io.discover):
        io_log.clear()
        read(tmp_path)
        assert line in io_log.messages
        assert not any("doe" in message.lower() for message in io_log.messages), io_log.messages


def test_folder_with_two_series_is_not_one_study(tmp_path):
    write(build_run(n=2), tmp_path, "xa", name="a")
    write(build_run(n=2, seed=1), tmp_path, "xa", name="b")
    with pytest.raises(InvalidStudyError, match="holds 2 series"):
        vpimage.io.open(tmp_path)


def _clip(path, levels=(0, 40, 80)):
    """A lossless grey video (FFV1 in AVI) at ``path``, 32 x 24 px, one frame of each level; returns ``path``."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 5.0, (32, 24), isColor=False)
    for level in levels:
        writer.write(np.full((24, 32), level, np.uint8))
    writer.release()
    return path


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_a_folder_whose_one_study_is_a_video_opens_that_video(tmp_path):
    # It was refused: "holds no readable DICOM image (1 file(s) unreadable)".
    video = _clip(tmp_path / "folder" / "run.avi")
    (tmp_path / "folder" / "notes.txt").write_text("not DICOM")
    with pytest.warns(UserWarning, match="1 file\\(s\\) skipped: notes.txt"):
        (source,) = vpimage.io.discover(tmp_path / "folder")
    with pytest.warns(UserWarning, match="1 file\\(s\\) skipped: notes.txt"):
        study = vpimage.io.open(tmp_path / "folder")
    assert source.files == (video,) and study.path == video and study.sop_class == "video"
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), np.full((3, 24, 32), [[[0]], [[40]], [[80]]]))
    np.testing.assert_allclose(study.timing.time_s, [0, 0.2, 0.4], atol=1e-6)
    assert study.skipped_files[0].startswith("notes.txt (is not a DICOM file")


@pytest.mark.filterwarnings("ignore:.*no calibration")
@pytest.mark.parametrize("second, held", [("video", "2 videos"), ("series", "1 series and 1 video")])
def test_a_folder_whose_video_is_one_of_two_studies_is_not_one_study(tmp_path, second, held):
    _clip(tmp_path / "run.avi")
    if second == "video":
        _clip(tmp_path / "later.avi", levels=(90, 120))
    else:
        write(build_run(n=2), tmp_path, "xa", name="a")
    assert len(vpimage.io.discover(tmp_path)) == 2
    with pytest.raises(InvalidStudyError, match=f"holds {held}, not one study; open "):
        vpimage.io.open(tmp_path)


def test_runs_of_one_series_are_joined_in_time_order(tmp_path):
    early, late = build_run(n=3, seed=1), build_run(n=4, seed=2, jittered=True)
    paths = [write(late, tmp_path, "xa", name="a_late"), write(early, tmp_path, "xa", name="b_early")]
    for path, start in zip(paths, ("20260101120010.000000", "20260101120000.000000")):
        ds = dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.4"  # runs of one series, one study
        ds.AcquisitionDateTime = start
        ds.save_as(path, enforce_file_format=True)
    study = vpimage.io.open(tmp_path)
    frames = np.stack(list(study.iter_frames()))
    np.testing.assert_array_equal(frames, np.concatenate([expected_frames(early), expected_frames(late)]))
    np.testing.assert_allclose(study.timing.time_s, np.concatenate([early.time_s, 10.0 + late.time_s]), atol=1e-6)
    np.testing.assert_array_equal(study.frame(4), expected_frames(late)[1])


def test_runs_without_start_times_follow_each_other_with_a_warning(tmp_path):
    runs = [build_run(n=2, seed=1), build_run(n=2, seed=2)]
    for index, run in enumerate(runs):
        path = write(run, tmp_path, "xa", name=f"r{index}")
        ds = dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.4"  # runs of one series, one study
        ds.InstanceNumber = index + 1
        for keyword in ("AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime", "ContentDate", "ContentTime"):
            ds.pop(keyword, None)
        ds.save_as(path, enforce_file_format=True)
    with pytest.warns(UserWarning, match="no readable start time"):
        study = vpimage.io.open(tmp_path)
    np.testing.assert_allclose(study.timing.time_s, [0, 1 / 15, 2 / 15, 3 / 15], atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_discover_lists_each_series_and_video_of_a_tree(tmp_path):
    single = build_run(n=3, seed=1)
    series = build_run(n=4, seed=2, jittered=True)
    write(single, tmp_path / "a", "enhanced-xa", name="run")
    write(series, tmp_path / "b", "xrf-series", name="frames")
    _clip(tmp_path / "c" / "clip.avi", levels=(0, 40))
    (tmp_path / "c" / "notes.txt").write_text("not DICOM")
    with pytest.warns(UserWarning, match="1 file\\(s\\) skipped: notes.txt"):
        sources = vpimage.io.discover(tmp_path)
    assert [len(s.files) for s in sources] == [1, 4, 1]
    assert sources[1].origin == tmp_path / "b" / "frames"
    studies = [s.open() for s in sources]
    assert len({s.key for s in studies}) == 3
    assert [s.n_frames for s in studies] == [3, 4, 2]
    np.testing.assert_array_equal(np.stack(list(studies[1].iter_frames())), expected_frames(series))
    np.testing.assert_allclose(studies[1].timing.time_s, series.time_s, atol=1e-6)


def test_discover_through_a_dicomdir(tmp_path):
    run = build_run(n=3)
    sources = vpimage.io.discover(media(tmp_path, run) / "DICOMDIR")
    assert len(sources) == 1 and len(sources[0].files) == 3
    np.testing.assert_array_equal(np.stack(list(sources[0].open().iter_frames())), expected_frames(run))


def test_a_study_file_given_to_discover_is_that_study(tmp_path):
    # It was taken for a DICOMDIR and gave no study at all.
    path = write(build_run(n=3), tmp_path, "xa", name="one")
    (found,) = vpimage.io.discover(path)
    assert found.files == (path,)


def test_an_empty_path_is_refused_not_read_as_the_working_folder():
    for call, name in ((vpimage.io.open, "path"), (vpimage.io.discover, "root")):
        with pytest.raises(ArgumentError, match=f"`{name}` is empty: it names no file or folder"):
            call("")
        for value, kind in ((None, "NoneType"), (3, "int"), (b"run.dcm", "bytes")):  # (a pathlib TypeError)
            with pytest.raises(ArgumentError, match=f"`{name}` must be a str or PathLike .*; got {kind}"):
                call(value)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS", "ignore:The value length")  # writing the hostile IDs
@pytest.mark.parametrize("bad_id", ["A" * 300, "IMG\0X"], ids=["too-long", "nul-byte"])
def test_a_file_id_no_file_can_have_is_not_followed(tmp_path, bad_id, capsys):
    from vpimage.cli import main

    run = build_run(n=3)
    root = media(tmp_path, run)
    dicomdir = dcmread(root / "DICOMDIR")
    images = [r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
    images[0].ReferencedFileID = [bad_id]
    dicomdir.save_as(root / "DICOMDIR", enforce_file_format=True)
    for target in (root, root / "DICOMDIR"):
        with pytest.warns(UserWarning, match="1 not a usable file name \\(not followed\\)"):
            study = vpimage.io.open(target)
        assert study.n_frames == 2  # the two images still referenced
        np.testing.assert_array_equal(study.frame(0), expected_frames(run)[1])
        assert len(study.skipped_files) == 1 and study.skipped_files[0].endswith("(not a usable file name)")
    for image in images:  # none usable: refused in one line, by the library and the command line
        image.ReferencedFileID = [bad_id]
    dicomdir.save_as(root / "DICOMDIR", enforce_file_format=True)
    with pytest.raises(InvalidStudyError, match="none of its 3 referenced files can be read: 3 not a usable"):
        vpimage.io.open(root)
    with pytest.raises(InvalidStudyError, match="not a usable file name"):
        vpimage.io.discover(root)
    assert main(["info", str(root)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not a usable file name" in err


def _strip_series(path, study_uid, patient):
    ds = dcmread(path)
    del ds.SeriesInstanceUID
    ds.StudyInstanceUID, ds.PatientName, ds.PatientID = study_uid, patient, patient
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_instances_without_series_uid_are_grouped_as_discover_groups_them(tmp_path):
    folder = write(build_run(n=2), tmp_path, "xa-series")
    files = sorted(folder.iterdir())
    _strip_series(files[0], "1.2.3.1", "ALPHA")
    _strip_series(files[1], "1.2.3.2", "BETA")
    sources = vpimage.io.discover(folder)
    assert len(sources) == 2  # each instance without a series is its own study
    with pytest.raises(InvalidStudyError, match="holds 2 series, not one study .2 instance.s. without .0020,000E.") \
            as info:
        vpimage.io.open(folder)
    assert "ALPHA" not in str(info.value) and "BETA" not in str(info.value)
    assert [source.open().n_frames for source in sources] == [1, 1]


def test_instances_of_one_series_from_two_studies_are_refused_naming_both(tmp_path):
    folder = write(build_run(n=3), tmp_path, "xa-series")
    files = sorted(folder.iterdir())
    ds = dcmread(files[-1])
    ds.StudyInstanceUID = "1.2.3.999"
    ds.save_as(files[-1], enforce_file_format=True)
    for open_ in (lambda: vpimage.io.open(folder), lambda: vpimage.io.discover(folder)[0].open()):
        with pytest.raises(InvalidStudyError, match=f"Study Instance UID differs from {files[0].name}") as info:
            open_()
        assert info.value.path == str(files[-1])


@pytest.mark.parametrize(("keyword", "value", "reason"), [
    ("ImagerPixelSpacing", ["0.16", "0.16"], "pixel size 0.1076 mm differs from 0001.dcm's 0.1036 mm .by more than 1 %"),
    ("DistanceSourceToPatient", "600", "pixel size 0.084 mm differs from 0001.dcm's 0.1036 mm"),
    ("PositionerPrimaryAngle", "0", "positioner angles 0, 3.25 deg differ from 0001.dcm's -88.5, 3.25 by 88.5 deg"),
    ("PositionerSecondaryAngle", "10", "differ from 0001.dcm's -88.5, 3.25 by 6.75 deg .more than 5."),
    ("RadiusOfCircularShutter", "18", "display shutter overlaps 0001.dcm's by 73 % only .less than 90 %."),
    ("ShutterShape", None, "has no display shutter, unlike 0001.dcm"),
])
def test_instances_of_one_series_seen_another_way_are_refused_naming_both(tmp_path, keyword, value, reason):
    # Their frames would be measured in the first instance's millimetres, against corners
    # drawn on its view, inside its shutter.
    folder = write(build_run(n=3), tmp_path, "xa-series")
    files = sorted(folder.iterdir())
    assert files[0].name == "0001.dcm"
    ds = dcmread(files[-1])
    if value is None:
        del ds[keyword]
    else:
        setattr(ds, keyword, value)
    ds.save_as(files[-1], enforce_file_format=True)
    with pytest.raises(InvalidStudyError, match=reason) as info:
        vpimage.io.open(folder)
    assert info.value.path == str(files[-1]) and "cannot be measured as one series" in str(info.value)


@pytest.mark.parametrize(("keyword", "value"), [
    ("ImagerPixelSpacing", ["0.1545", "0.1545"]),  # 0.3 % apart: the same pixel size
    ("PositionerPrimaryAngle", "-85"),  # 3.5 deg apart
    ("RadiusOfCircularShutter", "20.5"),  # the shutter opened a little: 95 % overlap
])
def test_instances_of_one_series_a_little_apart_are_one_study(tmp_path, keyword, value):
    folder = write(build_run(n=3), tmp_path, "xa-series")
    last = sorted(folder.iterdir())[-1]
    ds = dcmread(last)
    setattr(ds, keyword, value)
    ds.save_as(last, enforce_file_format=True)
    study = vpimage.io.open(folder)
    assert study.n_frames == 3 and study.geometry.mm_per_px == pytest.approx(0.154 * 740 / 1100)


def test_instances_a_degree_or_two_apart_across_a_view_boundary_are_one_study(tmp_path):
    # 76 and 74 degrees: lateral and oblique by name, two degrees apart in fact. The names
    # were compared, and the series refused.
    folder = write(build_run(n=3, primary_deg=76.0, secondary_deg=0.0), tmp_path, "xa-series")
    last = sorted(folder.iterdir())[-1]
    ds = dcmread(last)
    ds.PositionerPrimaryAngle = "74"
    ds.save_as(last, enforce_file_format=True)
    study = vpimage.io.open(folder)
    assert study.n_frames == 3 and study.geometry.view == "lateral"  # the first instance's


def test_a_dicom_file_named_as_a_video_is_read_as_dicom(tmp_path):
    # FFmpeg decodes DICOM too: a run.dcm renamed run.avi was opened as a video, its header's
    # calibration and frame times dropped. Its "DICM" marker decides, not its name.
    run = build_run(n=3, seed=4)
    dcm = write(run, tmp_path, "xa")
    renamed = dcm.rename(tmp_path / "run.avi")
    for study in (vpimage.io.open(renamed), vpimage.io.discover(tmp_path)[0].open()):
        np.testing.assert_array_equal(np.stack(list(study.iter_frames())), expected_frames(run))
        assert study.geometry.mm_per_px == pytest.approx(run.mm_per_px, rel=1e-9)
        np.testing.assert_allclose(study.timing.time_s, run.time_s, atol=1e-6)
