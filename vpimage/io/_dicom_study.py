"""DICOM studies: one (multi-frame) instance, or the instances of one series (single
frames, or several runs) in acquisition order.

Headers are read with large values deferred, so opening reads no pixel data but the first
frame (decoded once: it proves the data decodes, and gives the field of view when no
shutter is recorded). Deflated files are the exception: pydicom must inflate them whole.
"""

from __future__ import annotations

import logging
import re
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.datadict import dictionary_description, dictionary_has_tag, dictionary_VR
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from vpimage.errors import InvalidStudyError
from vpimage.io._decode import FrameDecoder
from vpimage.io._geometry import check_same_geometry, geometry
from vpimage.io._headers import sop_class_name
from vpimage.io._pixels import pixel_format, to_analysis
from vpimage.io._study import Study, dicom_key, reading
from vpimage.io._timing import instance_timing, runs_timing, series_order

__all__ = ["NOT_DICOM", "DicomInstance", "open_instance", "open_series", "read_header"]

logger = logging.getLogger(__name__)

_DEFER_BYTES = 4096  # values longer than this stay on disk until needed
#: :func:`read_header`'s reason for a file that is not DICOM at all.
NOT_DICOM = "is not a DICOM file: no 'DICM' prefix after the 128-byte preamble (DICOM Part 10)"
_EOF_BEFORE_DELIMITER = "End of file reached before delimiter"  # pydicom's warning
_TRAILING_PADDING = 0xFFFCFFFC  # (FFFC,FFFC) Data Set Trailing Padding


def read_header(path: Path) -> Dataset:
    """The DICOM header of ``path`` with large values (Pixel Data) left on disk.

    Raises
    ------
    InvalidStudyError
        Not a DICOM file (no preamble), unreadable or truncated file, no transfer syntax, an
        element that cannot be decoded (:func:`_check_decodable`).
    """
    if path.stat().st_size == 0:
        raise InvalidStudyError(path, "is empty (0 bytes)")
    with reading(path, "is not a readable DICOM file"):
        with warnings.catch_warnings():
            # pydicom keeps what it read of a file that ends before an element of undefined
            # length (encapsulated Pixel Data, a sequence) is closed, and only warns.
            warnings.filterwarnings("error", message=_EOF_BEFORE_DELIMITER)
            try:
                ds = dcmread(path, defer_size=_DEFER_BYTES)
            except UserWarning as warning:
                if _EOF_BEFORE_DELIMITER not in str(warning):
                    raise
                raise InvalidStudyError(
                    path, "the file is truncated: it ends before the delimiter of encapsulated Pixel Data or a sequence"
                ) from None
            except InvalidDicomError as error:
                if "'DICM'" not in str(error):
                    raise
                raise InvalidStudyError(path, NOT_DICOM) from None
            except struct.error:  # (pydicom ran out of bytes for an element's tag, VR or length)
                raise InvalidStudyError(path, "the file is truncated inside an element's header") from None
            except OSError as error:  # (the same inside a sequence item)
                if not str(error).startswith("No tag to read"):
                    raise
                raise InvalidStudyError(path, "the file is truncated inside a sequence") from None
        if "TransferSyntaxUID" not in ds.file_meta:
            raise InvalidStudyError(path, "(0002,0010) Transfer Syntax UID is missing from the file meta")
        if UID(ds.file_meta.TransferSyntaxUID).is_deflated:
            ds = dcmread(path)  # pydicom inflates deflated files whole (a cut stream fails there)
        else:
            _check_complete(path, ds)
        _check_decodable(path, ds.file_meta)
        _check_decodable(path, ds)
    return ds


def _check_complete(path: Path, ds: Dataset) -> None:
    """Refuse a file that ends inside its last element, or after it inside the next one's
    header: pydicom stops there without a word, keeping the elements before."""
    if not len(ds):
        return
    tag = list(ds.keys())[-1]
    last = ds.get_item(tag, keep_deferred=True)  # (a deferred value stays on disk)
    if not isinstance(last, RawDataElement) or last.length == 0xFFFFFFFF or tag == _TRAILING_PADDING:
        return  # (undefined length: read up to its delimiter, or the warning above; padding means nothing)
    end, size = last.value_tell + last.length, path.stat().st_size
    name = _element_name(tag)
    if end > size:
        raise InvalidStudyError(path, f"the file is truncated inside {name}")
    if end < size:
        raise InvalidStudyError(path, f"the file is truncated after {name}, inside the next element's header")


# Value representations pydicom reads as text whatever the bytes (no error to find).
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})


def _check_decodable(path: Path, ds: Dataset) -> None:
    """Refuse an element of ``ds`` or of its sequences' items whose bytes cannot be decoded
    as its VR says (a US of 3 bytes: a corrupted or mislabelled element). pydicom decodes a
    value when it is first asked for, which may be outside the readers' guards, and its error
    quotes the bytes (a patient's name, where the element held one): the message here names
    the element, its VR and length only. Private elements (never read), text (any bytes
    read as some text; most of a header: checking it tripled a header's read time) and values
    left on disk (Pixel Data, others over 4 KiB: read under the readers' guards) are passed
    over.
    What is decoded here is dropped, so pydicom warns of an invalid value when (and only
    where) a reader asks for it, as before."""
    for tag in ds.keys():
        element = raw = ds.get_item(tag, keep_deferred=True)
        if tag.is_private or (isinstance(raw, RawDataElement) and raw.value is None):
            continue
        if isinstance(raw, RawDataElement):
            if (raw.VR or dictionary_VR(tag)) in _TEXT_VRS:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    element = convert_raw_data_element(raw, ds=ds)
            except Exception:  # noqa: BLE001 - pydicom raises several kinds on bytes that do not fit
                vr = raw.VR or dictionary_VR(tag)  # (implicit VR: the dictionary's, as pydicom decodes it)
                raise InvalidStudyError(
                    path, f"the file is corrupt: {_element_name(tag)} ({vr}, {raw.length} bytes) cannot be decoded"
                ) from None
        if element.VR == "SQ":  # (a sequence of undefined length is read as one, its items' elements raw)
            for item in element.value:
                _check_decodable(path, item)


def _element_name(tag) -> str:
    """``"(0010,0010) Patient's Name"``, or the tag alone where the dictionary lacks it."""
    return f"{tag} {dictionary_description(tag)}" if dictionary_has_tag(tag) else str(tag)


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


class _RunsFrames:
    """Frames of several instances (runs) one after the other."""

    def __init__(self, instances: list[DicomInstance]):
        self.instances = instances
        self.starts = np.cumsum([0] + [i.fmt.n_frames for i in instances])

    def frame(self, index: int) -> np.ndarray:
        run = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self.instances[run].frame(index - int(self.starts[run]))

    def iter_frames(self) -> Iterator[np.ndarray]:
        for instance in self.instances:
            yield from instance.iter_frames()


def _identity(headers: list[Dataset]) -> frozenset[str]:
    """The words of the headers' Patient's Name, and their Patient ID and Birth Date (for
    :meth:`Study.shown_name`, never shown)."""
    words = set()
    for ds in headers:
        words.update(re.split(r"[\^=\s,.]+", str(ds.get("PatientName", "") or "")))
        words.update(str(ds.get(keyword, "") or "").strip() for keyword in ("PatientID", "PatientBirthDate"))
    return frozenset(words)


def _names(header: Dataset) -> tuple[str, str]:
    return UID(header.file_meta.TransferSyntaxUID).name, sop_class_name(header)


def open_instance(path: Path, header: Dataset | None = None, *, skipped_files: tuple[str, ...] = ()) -> Study:
    """Study of one DICOM instance (single- or multi-frame); ``skipped_files`` as
    :attr:`Study.skipped_files` (the other files of its folder)."""
    header = read_header(path) if header is None else header
    instance = DicomInstance(path, header)
    with reading(path, "frame 0 cannot be decoded"):
        first = instance.frame(0)
    with reading(path, "has unusable geometry or timing attributes"):
        geo = geometry(header, first, path)
        timing = instance_timing(header, instance.fmt.n_frames, path)
    syntax, sop = _names(header)
    key = dicom_key([header], path)
    logger.debug("study %s: one instance, %d frames, %s", key, instance.fmt.n_frames, syntax)
    return Study(path, source=instance, n_frames=instance.fmt.n_frames, rows=instance.fmt.rows,
                 columns=instance.fmt.columns, geometry=geo, timing=timing, photometric=instance.fmt.photometric,
                 transfer_syntax=syntax, sop_class=sop, white_level=instance.fmt.value_range()[1], key=key,
                 skipped_files=skipped_files, identity=_identity([header]))


def _check_alike(instances: list[DicomInstance]) -> None:
    """Refuse instances that cannot be frames of one study: of different studies
    ((0020,000D) Study Instance UID), one instance in two files (the same (0008,0018)
    SOP Instance UID: a copy would be played twice), or frames of different sizes,
    photometry or value ranges. The error names the file and the one it conflicts with."""
    first = instances[0]
    study_uid = str(first.header.get("StudyInstanceUID", "") or "")
    seen: dict[str, Path] = {}
    for instance in instances:
        uid = str(instance.header.get("SOPInstanceUID", "") or "")
        if uid and uid in seen:
            raise InvalidStudyError(
                instance.path, f"(0008,0018) SOP Instance UID is the same as in {seen[uid].name}: one instance in "
                               f"two files (a copy?); remove one")
        if uid:
            seen[uid] = instance.path
        other = str(instance.header.get("StudyInstanceUID", "") or "")
        if other != study_uid:
            raise InvalidStudyError(
                instance.path, f"(0020,000D) Study Instance UID differs from {first.path.name}'s: instances of "
                               f"different studies are not one study")
    for instance in instances[1:]:
        if (instance.fmt.rows, instance.fmt.columns, instance.fmt.photometric, instance.fmt.value_range()) != (
                first.fmt.rows, first.fmt.columns, first.fmt.photometric, first.fmt.value_range()):
            raise InvalidStudyError(instance.path, f"frame size, photometry or value range differs from {first.path.name}")


def open_series(origin: Path, instances: list[DicomInstance], *, skipped_files: tuple[str, ...] = ()) -> Study:
    """Study of the instances of one series: single frames, or runs (multi-frame
    instances), ordered by acquisition time; each run keeps its own frame times
    (:func:`~vpimage.io._timing.runs_timing`). ``skipped_files`` as :attr:`Study.skipped_files`.

    Raises
    ------
    InvalidStudyError
        Instances of different studies, one instance in two files (the same SOP
        Instance UID), frames of different sizes, photometry or value ranges, or of a
        different pixel size, view or display shutter (:func:`check_same_geometry`).
    """
    _check_alike(instances)
    order = series_order([i.header for i in instances])
    instances = [instances[i] for i in order]
    first = instances[0]
    with reading(first.path, "frame 0 cannot be decoded"):
        frame0 = first.frame(0)
    with reading(origin, "has unusable geometry or timing attributes"):
        geo = geometry(first.header, frame0, first.path)
        for instance in instances[1:]:
            check_same_geometry(instance.header, instance.path, first.header, geo, first.path)
        timings = [instance_timing(i.header, i.fmt.n_frames, i.path) for i in instances]
        timing = runs_timing([i.header for i in instances], timings, origin)
    syntax, sop = _names(first.header)
    key = dicom_key([i.header for i in instances], origin)
    logger.info("study %s: %d instance(s) of one series, %d frames", key, len(instances), len(timing.time_s))
    return Study(origin, source=_RunsFrames(instances), n_frames=len(timing.time_s), rows=first.fmt.rows,
                 columns=first.fmt.columns, geometry=geo, timing=timing, photometric=first.fmt.photometric,
                 transfer_syntax=syntax, sop_class=sop, white_level=first.fmt.value_range()[1], key=key,
                 skipped_files=skipped_files, identity=_identity([i.header for i in instances]))
