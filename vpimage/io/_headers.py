"""Reading attributes from a DICOM header, wherever the object keeps them.

Legacy objects keep their attributes at the top level; enhanced multi-frame objects keep
many of them inside the functional groups: ``SharedFunctionalGroupsSequence`` (one item
valid for all frames) or ``PerFrameFunctionalGroupsSequence`` (one item per frame), each
item holding one sequence per functional group (``PixelMeasuresSequence``,
``FrameContentSequence``, ...). The helpers here look in all these places and turn
values into plain Python numbers, refusing non-finite ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from os import PathLike

from pydicom.dataset import Dataset
from pydicom.uid import UID

from vpimage.errors import InvalidStudyError

__all__ = ["find", "number", "numbers", "per_frame", "shown", "shown_term", "sop_class_name", "uid_name"]


def _group_items(item: Dataset) -> Iterator[Dataset]:
    """The first item of every functional-group sequence in a functional-groups item."""
    for element in item:
        if element.VR == "SQ" and element.value:
            yield element.value[0]


def find(ds: Dataset, keyword: str):
    """The value of ``keyword``: top level first, then the shared functional groups, then the
    first frame's functional groups. ``None`` when absent or empty."""
    places = [ds]
    for fg_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(fg_keyword)
        if seq:
            places.extend(_group_items(seq[0]))
    for place in places:
        value = place.get(keyword)
        if value is not None and value != "":
            return value
    return None


def per_frame(ds: Dataset, keyword: str) -> list | None:
    """One value of ``keyword`` per item of ``PerFrameFunctionalGroupsSequence``, or ``None``
    when the sequence is absent or any item lacks the attribute."""
    seq = ds.get("PerFrameFunctionalGroupsSequence")
    if not seq:
        return None
    values = []
    for item in seq:
        found = next((g.get(keyword) for g in _group_items(item) if g.get(keyword) not in (None, "")), None)
        if found is None:
            return None
        values.append(found)
    return values


def _items(value) -> list:
    """``value``'s values: one, or each of a multi-value."""
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]


def shown(value) -> str:
    """``value`` as a message may show it: its numbers to four significant digits, or only
    the length of its text where that is not all numbers. A mislabelled or corrupted element
    can hold a patient's name, id or birth date, whose text no message may echo."""
    items = _items(value)
    try:
        return repr("\\".join(f"{float(v):.4g}" for v in items))
    except (TypeError, ValueError):
        return _length_only("\\".join(str(v) for v in items))


def shown_term(value, terms) -> str:
    """``value`` of a coded attribute as a message may show it: quoted where it is one of the
    DICOM-defined ``terms`` (``'PALETTE COLOR'``: no patient's text), else only the length
    of its text, as :func:`shown` shows text (a number too: it may be a patient id)."""
    text = str(value).strip()
    return repr(text) if text in terms else _length_only(text)


def uid_name(value) -> str:
    """A UID as messages and outputs may show it: its name where pydicom knows it
    (``"X-Ray Angiographic Image Storage"``), the UID itself where it is well-formed (digits
    and dots), else only the length of its text (see :func:`shown`)."""
    uid = UID(str(value).strip())
    return uid.name if uid.is_valid else _length_only(uid)


def sop_class_name(ds: Dataset) -> str:
    """(0008,0016) SOP Class UID of ``ds``, else its file meta's Media Storage SOP Class UID,
    as :func:`uid_name` shows it; ``"unknown"`` where it has neither."""
    uid = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID", "")
    return uid_name(uid) if uid else "unknown"


def _length_only(text: str) -> str:
    return f"(a text of {len(text.strip())} characters, not shown)"


def numbers(value, path: str | PathLike, keyword: str) -> list[float]:
    """``value`` (one number or a multi-value) as a list of finite floats.

    Raises
    ------
    InvalidStudyError
        When a value is not a number or not finite; the message names ``keyword``.
    """
    try:
        out = [float(v) for v in _items(value)]
    except (TypeError, ValueError):
        raise InvalidStudyError(path, f"{keyword} {shown(value)} is not a number") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise InvalidStudyError(path, f"{keyword} {shown(value)} is not a finite number")
    return out


def number(value, path: str | PathLike, keyword: str) -> float:
    """The first value of ``value`` as a finite float (see :func:`numbers`)."""
    return numbers(value, path, keyword)[0]
