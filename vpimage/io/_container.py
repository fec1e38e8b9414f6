"""What a video's container says of itself, read from its bytes (OpenCV does not tell).

Three containers are recognised by their first bytes: AVI (RIFF), MP4/MOV (ISO base media
boxes) and Matroska/WebM (EBML). For each, the top-level structure is walked: every unit
states its own length in bytes, so a file that ends before its last unit does is cut short
(an MPEG transport or program stream, which states no lengths, cannot be checked). An AVI's
stream header also says whether the file declares a frame rate at all: where it does not,
FFmpeg (through OpenCV) reads it as 25 fps without a word.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Container", "read_container"]

_MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_EBML, _SEGMENT = 0x1A45DFA3, 0x18538067
_HDRL_MAX = 1 << 20  # bytes of an AVI's header list read at most (a few hundred in practice)


@dataclass(frozen=True)
class Container:
    """What a video's bytes say of its container.

    Attributes
    ----------
    kind : {"AVI", "MP4", "Matroska"} or None
        None: another container, not checked.
    cut_short : str or None
        Why the file ends before its container's structure does; None when it does not
        (or cannot be checked).
    no_frame_rate : str or None
        Why the file declares no frame rate (an AVI whose stream header's rate or scale
        is 0 and whose main header gives no frame period); None when it declares one.
    """

    kind: str | None
    cut_short: str | None = None
    no_frame_rate: str | None = None


def _riff_length(head: bytes) -> int | None:
    """Bytes of the top-level RIFF chunk starting ``head``, header included; None for
    anything else (trailing bytes that are no chunk are not checked)."""
    if len(head) < 8 or head[:4] != b"RIFF":
        return None
    size = struct.unpack_from("<I", head, 4)[0]
    return 8 + size + (size & 1)  # (a chunk is padded to an even length)


def _box_length(head: bytes) -> int | None:
    """Bytes of the ISO base media box starting ``head``, header included; None when
    its length is 'to the end of the file' or it is no box."""
    if len(head) < 8 or not all(0x20 <= c < 0x7F for c in head[4:8]):
        return None
    length = struct.unpack_from(">I", head)[0]
    if length == 1 and len(head) >= 16:
        length = struct.unpack_from(">Q", head, 8)[0]
    return length if length >= 8 else None


def _vint(data: bytes, offset: int) -> tuple[int, int, bool] | None:
    """EBML variable-length integer at ``offset``: (value with its length marker, its
    length in bytes, whether every value bit is 1, Matroska's "unknown size")."""
    if offset >= len(data) or data[offset] == 0:
        return None
    width = 8 - data[offset].bit_length() + 1
    if offset + width > len(data):
        return None
    value = int.from_bytes(data[offset : offset + width], "big")
    marker = 1 << (7 * width)
    return value, width, value - marker == marker - 1


def _ebml_length(head: bytes) -> int | None:
    """Bytes of the top-level EBML header or Segment starting ``head``, header included;
    None for another element or a Segment of unknown size (a live recording)."""
    element = _vint(head, 0)
    if element is None or element[0] not in (_EBML, _SEGMENT):
        return None
    size = _vint(head, element[1])
    if size is None or size[2]:
        return None
    return element[1] + size[1] + size[0] - (1 << (7 * size[1]))


def _cut_short(stream: BinaryIO, file_size: int, length: Callable[[bytes], int | None], unit: str) -> str | None:
    """Walk the top-level units (``length`` of each from its first 16 bytes); the reason
    when one runs past the end of the file."""
    position = 0
    while position < file_size:
        stream.seek(position)
        size = length(stream.read(16))
        if size is None:
            return None
        if position + size > file_size:
            return (f"the file is cut short: its {unit} at byte {position} ends at byte {position + size}, "
                    f"the file at byte {file_size}")
        position += size
    return None


def _avi_no_frame_rate(stream: BinaryIO) -> str | None:
    """Why an AVI declares no frame rate: its first video stream header's dwRate or dwScale
    is 0 and its main header's dwMicroSecPerFrame is 0 too (FFmpeg then takes 25 fps); None
    when it declares one or its header list cannot be read."""
    stream.seek(12)
    head = stream.read(12)
    if len(head) < 12 or head[:4] != b"LIST" or head[8:] != b"hdrl":
        return None
    hdrl = stream.read(min(struct.unpack_from("<I", head, 4)[0] - 4, _HDRL_MAX))
    frame_period = scale_rate = None
    position = 0
    while position + 8 <= len(hdrl) and scale_rate is None:
        fourcc, size = hdrl[position : position + 4], struct.unpack_from("<I", hdrl, position + 4)[0]
        body = hdrl[position + 8 : position + 8 + size]
        if fourcc == b"avih" and len(body) >= 4:
            frame_period = struct.unpack_from("<I", body)[0]
        # LIST 'strl' first holds its 'strh': fccType at byte 12 of the list, dwScale and dwRate at 32
        elif fourcc == b"LIST" and body[:8] == b"strlstrh" and body[12:16] == b"vids" and len(body) >= 40:
            scale_rate = struct.unpack_from("<II", body, 32)
        position += 8 + size + (size & 1)
    if frame_period is None or scale_rate is None or frame_period or all(scale_rate):
        return None
    return (f"the AVI declares no frame rate: its video stream header's dwRate/dwScale is "
            f"{scale_rate[1]}/{scale_rate[0]}, its main header's dwMicroSecPerFrame 0")


def read_container(path: Path) -> Container:
    """What the bytes of the video at ``path`` say of its container (module docstring).

    Parameters
    ----------
    path : Path
        The video file.

    Returns
    -------
    Container
    """
    file_size = path.stat().st_size
    with path.open("rb") as stream:
        head = stream.read(16)
        if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
            return Container("AVI", _cut_short(stream, file_size, _riff_length, "RIFF chunk"),
                             _avi_no_frame_rate(stream))
        if head[4:8] in _MP4_FIRST_BOXES:
            return Container("MP4", _cut_short(stream, file_size, _box_length, "box"))
        if int.from_bytes(head[:4], "big") == _EBML:
            return Container("Matroska", _cut_short(stream, file_size, _ebml_length, "EBML element"))
    return Container(None)
