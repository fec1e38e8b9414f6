"""Which study a path holds: a DICOM file, a folder, a DICOMDIR, or a video.

A folder holding a ``DICOMDIR`` is read through it; any other folder is searched
recursively (hidden files skipped). A DICOMDIR's referenced files are resolved inside
its own folder: a Referenced File ID that is absolute, climbs out with ``..`` or
otherwise points outside that folder, or that no file can have as name (a NUL byte, too
long), is refused with a warning, never followed.
Unreadable files are reported (a warning naming each) and skipped, among them an object
of an image SOP Class without Pixel Data (a file cut short at an element boundary);
other DICOM objects without pixel data (reports, presentation states) are skipped with
a note in the log.
What remains must be one study, as :func:`discover` tells them apart: one instance, or
the instances of one series (single frames, or several runs), which are put in
acquisition order; or one video (a file whose name ends as one, :data:`VIDEO_SUFFIXES`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.misc import is_dicom

from vpimage._paths import path_argument
from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._dicom_study import NOT_DICOM, DicomInstance, open_instance, open_series, read_header
from vpimage.io._headers import sop_class_name
from vpimage.io._study import Study, dicom_key, reading

__all__ = ["VIDEO_SUFFIXES", "StudySource", "dicomdir_files", "discover", "open_path"]

logger = logging.getLogger(__name__)

#: File name endings read as video through OpenCV (its FFmpeg reads each of these containers).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts", ".m2ts", ".mts", ".webm",
                  ".ogv", ".flv", ".3gp", ".asf", ".vob")
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


def _is_video(path: Path) -> bool:
    """``path`` is read as a video: its name ends as one, and it is no DICOM file (whose
    header, calibration and timing a video reader would drop; FFmpeg decodes DICOM too)."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        return False
    try:
        return not is_dicom(path)
    except OSError:
        return True  # (the video reader names the file and why it cannot be read)


def _named_header(path: Path) -> Dataset:
    """:func:`read_header` of a file named as the input (not a video by its name): one that
    is not DICOM at all is refused saying which suffixes would have been read as video."""
    try:
        return read_header(path)
    except InvalidStudyError as error:
        if error.reason != NOT_DICOM:
            raise
        raise InvalidStudyError(path, f"{NOT_DICOM}, nor a video: its suffix {path.suffix or '(none)'!r} is not one "
                                      f"read as video ({', '.join(VIDEO_SUFFIXES)})") from None


def _inside(root: Path, components: list[str]) -> Path | None:
    """``root / components`` when it stays inside ``root`` (case-insensitive fallback for
    media written in upper case), else None."""
    if not components or any(c in ("", ".", "..") or "/" in c or "\\" in c or ":" in c for c in components):
        return None
    target = root
    for component in components:
        candidate = target / component
        if not candidate.exists() and target.is_dir():
            matches = [p for p in target.iterdir() if p.name.lower() == component.lower()]
            candidate = matches[0] if matches else candidate
        target = candidate
    resolved = target.resolve()
    return resolved if resolved.is_relative_to(root.resolve()) else None


def dicomdir_files(path: Path) -> list[Path]:
    """The files a DICOMDIR references, resolved safely inside its folder (module docstring).

    Referenced files that are missing, outside its folder or not usable file names are
    named in one warning
    (:func:`_dicomdir_listing` gives them).

    Raises
    ------
    InvalidStudyError
        When the DICOMDIR itself cannot be read (truncated, malformed), or none of the
        files it references can be (a file set copied without its files).
    """
    return _dicomdir_listing(path)[0]


def _dicomdir_listing(path: Path) -> tuple[list[Path], list[str]]:
    """:func:`dicomdir_files`, and each referenced file not followed as ``"id (why)"``."""
    read_header(path)  # the checks of any DICOM file named directly (truncation and all)
    with reading(path, "is not a readable DICOMDIR"):
        ds = dcmread(path)
        records = list(ds.get("DirectoryRecordSequence") or [])
    files, outside, unusable, missing = [], [], [], []
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        components = [str(c).strip() for c in (file_id if type(file_id).__name__ == "MultiValue" else [file_id])]
        name = _shown("/".join(components))
        try:
            target = _inside(path.parent, components)
            is_file = target is not None and target.is_file()
        except (OSError, ValueError):  # (a name too long for the file system, a NUL byte)
            unusable.append(name)
            continue
        if target is None:
            outside.append(name)
        elif not is_file:
            missing.append(name)
        else:
            files.append(target)
    files = list(dict.fromkeys(files))  # (a file listed twice is one instance, not a copy of it)
    problems = [f"{len(names)} {what}: {', '.join(repr(n) for n in names[:5])}{', ...' if len(names) > 5 else ''}"
                for what, names in (("outside the DICOMDIR's folder (not followed)", outside),
                                    ("not a usable file name (not followed)", unusable),
                                    ("missing", missing)) if names]
    if problems and not files:
        raise InvalidStudyError(path, f"none of its {len(outside) + len(unusable) + len(missing)} referenced files "
                                      f"can be read: {'; '.join(problems)}")
    if problems:
        warnings.warn(f"{path}: of its referenced files, {'; '.join(problems)}", stacklevel=3)
    return files, ([f"{n} (outside the DICOMDIR's folder)" for n in outside]
                   + [f"{n} (not a usable file name)" for n in unusable] + [f"{n} (missing)" for n in missing])


def _shown(name: str, limit: int = 60) -> str:
    """``name`` for a message, cut to ``limit`` characters."""
    return name if len(name) <= limit else f"{name[:limit]}...({len(name)} characters)"


def _image_instances(origin: Path, paths: list[Path]) -> tuple[list[DicomInstance], list[str]]:
    """The DICOM images among ``paths``, and each unreadable file as ``"name (reason)"``
    (named in one warning about ``origin``)."""
    instances, unreadable = [], []
    for path in paths:
        try:
            header = read_header(path)
            if "PixelData" not in header:
                _check_not_an_image(path, header)
                _log_skipped(path, header)
                continue
            instances.append(DicomInstance(path, header))
        except InvalidStudyError as error:
            unreadable.append(f"{path.name} ({error.reason})")
    if unreadable:
        warnings.warn(f"{origin}: {len(unreadable)} file(s) skipped: {'; '.join(unreadable)[:500]}", stacklevel=3)
    return instances, unreadable


def _open_instances(origin: Path, paths: list[Path], not_followed: list[str] = ()) -> Study:
    """The one study among ``paths``, the files of ``origin`` (a folder, a DICOMDIR, a
    video), as the module docstring says; ``not_followed`` are the DICOMDIR's references
    left out, ``"id (why)"``, kept with the files skipped in :attr:`Study.skipped_files`."""
    if not paths:  # (a DICOMDIR, a folder)
        raise InvalidStudyError(origin, "lists no file" if origin.is_file() else "holds no file")
    videos, others = [], []
    for path in paths:
        (videos if _is_video(path) else others).append(path)
    instances, unreadable = _image_instances(origin, others)
    if not instances and not videos:
        raise InvalidStudyError(origin, f"holds no readable DICOM image ({len(unreadable)} file(s) unreadable)")
    skipped = tuple(not_followed) + tuple(unreadable)
    series = defaultdict(list)
    for instance in instances:
        series[_series_key(instance.path, instance.header)].append(instance)
    if len(series) + len(videos) > 1:
        without = sum(1 for instance in instances if not str(instance.header.get("SeriesInstanceUID", "") or ""))
        note = (f" ({without} instance(s) without (0020,000E) Series Instance UID, each its own study)"
                if without else "")
        kinds = (([(f"{len(series)} series", "one series' folder or file")] if series else [])
                 + ([(f"{len(videos)} video{'s' if len(videos) > 1 else ''}", "one video")] if videos else []))
        raise InvalidStudyError(origin, f"holds {' and '.join(held for held, _ in kinds)}, not one study{note}; "
                                        f"open {', or '.join(choice for _, choice in kinds)}")
    if videos:
        from vpimage.io._video import open_video  # OpenCV loads only for videos

        return open_video(videos[0], skipped_files=skipped)
    if len(instances) == 1:
        return open_instance(instances[0].path, instances[0].header, skipped_files=skipped)
    return open_series(origin, instances, skipped_files=skipped)


def _series_key(path: Path, header) -> str:
    """The series an instance belongs to: its (0020,000E) Series Instance UID; an
    instance without one is a study of its own (as in :func:`discover`)."""
    return str(header.get("SeriesInstanceUID", "") or "") or str(path)


def _folder_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def _check_not_an_image(path: Path, header) -> None:
    """Refuse an object of an image SOP Class that has no Pixel Data: a file cut short
    at an element boundary, or stripped, is damaged, not a report to pass over."""
    sop_class = sop_class_name(header)
    if "Image Storage" in sop_class:
        raise InvalidStudyError(
            path, f"is a {sop_class} object without (7FE0,0010) Pixel Data: the file is cut short or damaged")


def _log_skipped(path: Path, header) -> None:
    """Log that the DICOM object without pixel data in ``path`` is passed over, naming it by
    its key and SOP Class: its file name may hold the patient's name, and a log line is
    shown as it is (a warning waits for the study's :meth:`Study.shown_text`)."""
    logger.info("skipping instance %s (%s): a DICOM object without pixel data", dicom_key([header], path),
                sop_class_name(header))


def _check_exists(path: Path) -> None:
    """Refuse a ``path`` that does not exist, or that the system cannot look up (a name
    too long for it: shown cut, as the system would not take it whole)."""
    try:
        exists = path.exists()
    except OSError as error:
        raise InvalidStudyError(_shown(str(path)), f"cannot be looked up: {error.strerror or error}") from None
    if not exists:
        raise InvalidStudyError(path, "does not exist")


def _is_dicomdir(path: Path, header) -> bool:
    sop = str(header.file_meta.get("MediaStorageSOPClassUID", ""))
    return path.name.upper() == "DICOMDIR" or sop == _MEDIA_STORAGE_DIRECTORY


def open_path(path) -> Study:
    """The study held by ``path`` (see :func:`vpimage.io.open`)."""
    path = path_argument(path, "path")
    _check_exists(path)
    if path.is_dir():
        dicomdir = next((p for p in path.iterdir() if p.name.upper() == "DICOMDIR" and p.is_file()), None)
        if dicomdir is not None:
            return _open_instances(dicomdir, *_dicomdir_listing(dicomdir))
        return _open_instances(path, _folder_files(path))
    if _is_video(path):
        from vpimage.io._video import open_video  # OpenCV loads only for videos

        return open_video(path)
    header = _named_header(path)
    if _is_dicomdir(path, header):
        return _open_instances(path, *_dicomdir_listing(path))
    if "PixelData" not in header:
        _check_not_an_image(path, header)
        raise UnsupportedError(path, "is a DICOM object without (7FE0,0010) Pixel Data, not an image")
    return open_instance(path, header)


@dataclass(frozen=True)
class StudySource:
    """One study found by :func:`discover`: the files of one series, or one video.

    Attributes
    ----------
    origin : Path
        The folder holding all its files (the file itself for a single file or video).
    files : tuple of Path
        Its DICOM files (any order: :meth:`open` sorts them in time), or the video.

    The study's key for logs is the opened :attr:`Study.key`.
    """

    origin: Path
    files: tuple[Path, ...]

    def open(self) -> Study:
        """The :class:`Study` (frames in acquisition order)."""
        return _open_instances(self.origin, list(self.files))


def discover(root) -> list[StudySource]:
    """Every study under ``root`` (a folder tree, a DICOMDIR or a folder holding one; a
    study's own file is that study):
    DICOM files grouped by series, and videos; non-image objects skipped with a note in
    the log, unreadable files reported in one warning, never fatal.

    Raises
    ------
    InvalidStudyError
        When ``root`` does not exist, or its DICOMDIR cannot be read or references no
        file that can be.
    """
    root = path_argument(root, "root")
    _check_exists(root)
    if root.is_dir():
        dicomdir = next((p for p in root.iterdir() if p.name.upper() == "DICOMDIR" and p.is_file()), None)
        paths = dicomdir_files(dicomdir) if dicomdir is not None else _folder_files(root)
    elif not _is_video(root) and _is_dicomdir(root, _named_header(root)):
        dicomdir, paths = root, dicomdir_files(root)
    else:  # one study's own file (an image's, a video's)
        dicomdir, paths = None, [root]
    origin = dicomdir or root
    series: dict[str, list[Path]] = defaultdict(list)
    videos, unreadable = [], []
    for path in paths:
        if _is_video(path):
            videos.append(path)
            continue
        try:
            header = read_header(path)
            if "PixelData" not in header and not _is_dicomdir(path, header):
                _check_not_an_image(path, header)
        except InvalidStudyError as error:
            unreadable.append(f"{path.name} ({error.reason})")
            continue
        if "PixelData" not in header or _is_dicomdir(path, header):
            _log_skipped(path, header)
            continue
        series[_series_key(path, header)].append(path)
    if unreadable:
        warnings.warn(f"{origin}: {len(unreadable)} file(s) skipped: {'; '.join(unreadable)[:500]}", stacklevel=2)
    found = [StudySource(Path(os.path.commonpath(files)) if len(files) > 1 else files[0], tuple(files))
             for _, files in sorted(series.items(), key=lambda item: str(item[1][0]))]
    return found + [StudySource(v, (v,)) for v in videos]
