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

from vpimage.errors import InvalidStudyError

__all__ = ["find", "number", "numbers", "per_frame", "shown"]


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
        text = "\\".join(str(v) for v in items).strip()
        return f"(a text of {len(text)} characters, not shown)"


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
