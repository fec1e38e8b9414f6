"""DICOM studies: one (multi-frame) instance, or a series of single-frame instances.

Headers are read with large values deferred, so opening reads no pixel data but the first
frame (decoded once: it proves the data decodes, and gives the field of view when no
shutter is recorded). Deflated files are the exception: pydicom must inflate them whole.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID

from vpimage.errors import InvalidStudyError
from vpimage.io._decode import FrameDecoder
from vpimage.io._geometry import geometry
from vpimage.io._pixels import pixel_format, to_analysis
from vpimage.io._study import Study, reading
from vpimage.io._timing import instance_timing, series_order, series_timing

__all__ = ["DicomInstance", "open_instance", "open_series", "read_header"]

logger = logging.getLogger(__name__)

_DEFER_BYTES = 4096  # values longer than this stay on disk until needed


def read_header(path: Path) -> Dataset:
    """The DICOM header of ``path`` with large values (Pixel Data) left on disk.

    Raises
    ------
    InvalidStudyError
        Not a DICOM file (no preamble), unreadable or truncated header, no transfer syntax.
    """
    with reading(path, "is not a readable DICOM file"):
        ds = dcmread(path, defer_size=_DEFER_BYTES)
        if "TransferSyntaxUID" not in ds.file_meta:
            raise InvalidStudyError(path, "(0002,0010) Transfer Syntax UID is missing from the file meta")
        if UID(ds.file_meta.TransferSyntaxUID).is_deflated:
            ds = dcmread(path)  # pydicom inflates deflated files whole
    return ds


class DicomInstance:
    """Lazy frames (analysis values) of one DICOM instance.

    Parameters
    ----------
    path : Path
        The file.
    header : Dataset
        Its header from :func:`read_header`.
    """

    def __init__(self, path: Path, header: Dataset):
        self.path, self.header = path, header
        with reading(path, "has unusable pixel attributes"):
            self.fmt = pixel_format(header, path)
            in_memory = UID(header.file_meta.TransferSyntaxUID).is_deflated
            self.decoder = FrameDecoder(path, header, self.fmt, in_memory=in_memory)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based), float32 [rows, cols]."""
        return to_analysis(self.decoder.frame(index), self.fmt, self.path)

    def iter_frames(self) -> Iterator[np.ndarray]:
        """All frames in order, float32 [rows, cols], one decoded at a time."""
        for raw in self.decoder.iter_frames():
            yield to_analysis(raw, self.fmt, self.path)


class _SeriesFrames:
    """Frames of single-frame instances, in the given (acquisition) order."""

    def __init__(self, instances: list[DicomInstance]):
        self.instances = instances

    def frame(self, index: int) -> np.ndarray:
        return self.instances[index].frame(0)

    def iter_frames(self) -> Iterator[np.ndarray]:
        for instance in self.instances:
            yield instance.frame(0)


def _key(datasets: list[Dataset], path: Path) -> str:
    uids = [str(ds.get("SOPInstanceUID", "")) for ds in datasets]
    text = "\n".join(uids) if all(uids) else str(path.resolve())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _names(header: Dataset) -> tuple[str, str]:
    syntax = UID(header.file_meta.TransferSyntaxUID)
    sop = header.get("SOPClassUID") or header.file_meta.get("MediaStorageSOPClassUID", "")
    return syntax.name, UID(str(sop)).name if sop else "unknown"


def open_instance(path: Path, header: Dataset | None = None) -> Study:
    """Study of one DICOM instance (single- or multi-frame)."""
    header = read_header(path) if header is None else header
    instance = DicomInstance(path, header)
    with reading(path, "frame 0 cannot be decoded"):
        first = instance.frame(0)
    with reading(path, "has unusable geometry or timing attributes"):
        geo = geometry(header, first, path)
        timing = instance_timing(header, instance.fmt.n_frames, path)
    syntax, sop = _names(header)
    logger.debug("opened %s: %d frames, %s", path.name, instance.fmt.n_frames, syntax)
    return Study(path, source=instance, n_frames=instance.fmt.n_frames, rows=instance.fmt.rows,
                 columns=instance.fmt.columns, geometry=geo, timing=timing, photometric=instance.fmt.photometric,
                 transfer_syntax=syntax, sop_class=sop, key=_key([header], path))


def open_series(folder: Path, instances: list[DicomInstance]) -> Study:
    """Study of single-frame instances of one series, ordered by acquisition time.

    Raises
    ------
    InvalidStudyError
        An instance with several frames, or frames of different sizes or photometry.
    """
    first = instances[0]
    for instance in instances:
        if instance.fmt.n_frames != 1:
            raise InvalidStudyError(instance.path, f"a series instance has {instance.fmt.n_frames} frames; "
                                    "a series study is made of single frames")
        if (instance.fmt.rows, instance.fmt.columns, instance.fmt.photometric) != (
                first.fmt.rows, first.fmt.columns, first.fmt.photometric):
            raise InvalidStudyError(instance.path, f"frame size or photometry differs from {first.path.name}")
    headers = [instance.header for instance in instances]
    order = series_order(headers)
    instances = [instances[i] for i in order]
    headers = [headers[i] for i in order]
    first = instances[0]
    with reading(first.path, "frame 0 cannot be decoded"):
        frame0 = first.frame(0)
    with reading(folder, "has unusable geometry or timing attributes"):
        geo = geometry(first.header, frame0, first.path)
        timing = series_timing(headers, folder)
    syntax, sop = _names(first.header)
    return Study(folder, source=_SeriesFrames(instances), n_frames=len(instances), rows=first.fmt.rows,
                 columns=first.fmt.columns, geometry=geo, timing=timing, photometric=first.fmt.photometric,
                 transfer_syntax=syntax, sop_class=sop, key=_key(headers, folder))
