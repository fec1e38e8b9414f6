"""Which study a path holds: a DICOM file, a folder of one study, or a video.

A folder is searched recursively (hidden files skipped). Files that are not DICOM, or
not readable, are noted in the log and skipped; DICOM objects without pixel data
(reports, presentation states, DICOMDIRs) are skipped too. What remains must be one
study: a single instance, or single-frame instances of one series.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._dicom_study import DicomInstance, open_instance, open_series, read_header
from vpimage.io._study import Study

__all__ = ["VIDEO_SUFFIXES", "open_path"]

logger = logging.getLogger(__name__)

#: File name endings read as video through OpenCV.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")


def _image_instances(folder: Path) -> list[DicomInstance]:
    instances, skipped = [], 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            header = read_header(path)
            if "PixelData" not in header:
                logger.info("skipping %s: a DICOM object without pixel data", path.name)
                continue
            instances.append(DicomInstance(path, header))
        except InvalidStudyError as error:
            skipped += 1
            logger.info("skipping %s: %s", path.name, error.reason)
    if not instances:
        raise InvalidStudyError(folder, f"holds no readable DICOM image ({skipped} file(s) skipped)")
    return instances


def _open_folder(folder: Path) -> Study:
    instances = _image_instances(folder)
    if len(instances) == 1:
        return open_instance(instances[0].path, instances[0].header)
    series = defaultdict(list)
    for instance in instances:
        series[str(instance.header.get("SeriesInstanceUID", ""))].append(instance)
    multi = [i for i in instances if i.fmt.n_frames > 1]
    if len(series) > 1 or multi:
        raise InvalidStudyError(
            folder, f"holds {len(series)} series and {len(multi)} multi-frame instance(s), not one study; "
            "open one file or one series folder"
        )
    return open_series(folder, instances)


def _open_video(path: Path) -> Study:
    from vpimage.io._video import open_video  # OpenCV loads only for videos

    return open_video(path)


def open_path(path) -> Study:
    """The study held by ``path`` (see :func:`vpimage.io.open`)."""
    path = Path(path)
    if not path.exists():
        raise InvalidStudyError(path, "does not exist")
    if path.is_dir():
        return _open_folder(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _open_video(path)
    header = read_header(path)
    if "PixelData" not in header:
        raise UnsupportedError(path, "is a DICOM object without (7FE0,0010) Pixel Data, not an image")
    return open_instance(path, header)
