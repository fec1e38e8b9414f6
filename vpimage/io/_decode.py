"""Decoding the frames of one DICOM instance lazily, through pydicom's pixel backends.

Frames are read one at a time (``pydicom.pixels.pixel_array(src, index=i)`` and
``iter_pixels``): decoding frame ``i`` never decodes the others and memory while
iterating does not grow with the number of frames.

For compressed transfer syntaxes the preferred plugins are tried first: pyjpegls (CharLS)
for JPEG-LS, about 2.5-5x faster than pylibjpeg there with identical pixels, then
pylibjpeg for everything else; then the other pure decoders pydicom has (Pillow, its own
RLE decoder). The first plugin that decodes a frame is kept for the next ones, and a
frame it fails on is retried with the others.
GDCM is the fallback for syntaxes that none of those can decode (pylibjpeg not
installed): it is never handed data that the other decoders rejected, because GDCM 3.x
aborts the whole interpreter (an uncaught C++ exception) on some malformed streams, as
the fuzz test found. A frame that no plugin decodes is refused with
:class:`~vpimage.errors.UnsupportedError` naming each plugin's reason.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, parse_basic_offsets, parse_fragments
from pydicom.pixels import get_decoder, iter_pixels, pixel_array
from pydicom.pixels.utils import _get_jpg_parameters, get_j2k_parameters
from pydicom.uid import UID, JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes

from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._pixels import PixelFormat
from vpimage.io._study import is_stop

__all__ = ["FrameDecoder"]

logger = logging.getLogger(__name__)

_PREFERRED = ("pyjpegls", "pylibjpeg")  # pyjpegls decodes JPEG-LS only
_LAST_RESORT = "gdcm"  # only where no other plugin can decode the syntax (module docstring)
_UNDEFINED_LENGTH = 0xFFFFFFFF


def _plugins(uid: UID, path: Path) -> list[str]:
    """Decoding plugins for ``uid`` in the order they are tried (``[""]``: native data)."""
    if not uid.is_compressed:
        return [""]
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise UnsupportedError(path, f"no pixel decoder exists for transfer syntax {uid.name} ({uid})") from None
    available = list(decoder.available_plugins)
    if not available:
        raise UnsupportedError(path, f"no installed decoder handles {uid.name}: {decoder.missing_dependencies}")
    safe = [p for p in available if p != _LAST_RESORT]
    if not safe:
        return [_LAST_RESORT]
    return [p for p in _PREFERRED if p in safe] + sorted(p for p in safe if p not in _PREFERRED)


class FrameDecoder:
    """Lazy access to the raw frames of one DICOM instance.

    Parameters
    ----------
    path : Path
        The file (named in every error).
    header : Dataset
        Its header, read with large values deferred (or the whole dataset for deflated
        files, which pydicom cannot read lazily).
    fmt : PixelFormat
        Its checked pixel format.
    in_memory : bool
        True when ``header`` holds the pixel data itself (deflated transfer syntax).
    """

    def __init__(self, path: Path, header: Dataset, fmt: PixelFormat, *, in_memory: bool = False):
        self.path = path
        self.fmt = fmt
        self.uid = UID(header.file_meta.TransferSyntaxUID)
        self._source = header if in_memory else str(path)
        self._plugins = _plugins(self.uid, path)
        self._check_pixel_data(header, in_memory)

    def _check_pixel_data(self, header: Dataset, in_memory: bool) -> None:
        if "PixelData" not in header:
            raise InvalidStudyError(self.path, "(7FE0,0010) Pixel Data is missing")
        element = header.get_item("PixelData", keep_deferred=True)
        length = getattr(element, "length", None)
        if length is None:  # a read DataElement (in memory)
            value = header.PixelData
            length = _UNDEFINED_LENGTH if self.uid.is_encapsulated else len(value or b"")
        if self.uid.is_encapsulated:
            if length != _UNDEFINED_LENGTH:
                raise InvalidStudyError(self.path, f"Pixel Data of {self.uid.name} is not encapsulated")
            self._check_fragments(header, element, in_memory)
            return
        expected = self.fmt.frame_bytes * self.fmt.n_frames
        if not expected <= length <= expected + expected % 2:  # (an odd length is padded to even)
            raise InvalidStudyError(
                self.path,
                f"(7FE0,0010) Pixel Data has {length} bytes; {self.fmt.n_frames} frames of "
                f"{self.fmt.rows} x {self.fmt.columns} at {self.fmt.bits_allocated} bits need {expected}",
            )
        offset = getattr(element, "value_tell", None)
        if not in_memory and offset is not None and offset + expected > self.path.stat().st_size:
            raise InvalidStudyError(self.path, "the file is truncated inside (7FE0,0010) Pixel Data")

    def _check_fragments(self, header: Dataset, element, in_memory: bool) -> None:
        """The encapsulated frames against the header, from the items' headers and the first
        fragment only: as many frames as (0028,0008) Number of Frames says (a header that
        says fewer would drop the rest of the run unseen), and JPEG data no deeper than
        (0028,0100) Bits Allocated (deeper values would be cut to fit)."""
        n_frames = self.fmt.n_frames
        with io.BytesIO(header.PixelData) if in_memory else open(self.path, "rb") as stream:
            if not in_memory:
                stream.seek(element.value_tell)
            try:
                offsets = parse_basic_offsets(stream)
                n_fragments, _ = parse_fragments(stream)  # (puts the stream back)
                first = next(generate_fragments(stream), b"")
            except (ValueError, EOFError, OSError) as error:
                raise InvalidStudyError(self.path, f"(7FE0,0010) Pixel Data items are malformed: {_short(error)}") from None
        tables = [("Basic Offset Table", len(offsets))]
        if "ExtendedOffsetTable" in header:
            tables.append(("(7FE0,0001) Extended Offset Table", len(header.ExtendedOffsetTable) // 8))
        for name, count in tables:
            if count and count != n_frames:
                raise InvalidStudyError(self.path, f"the {name} lists {count} frames; (0028,0008) Number of Frames is {n_frames}")
        if n_fragments < n_frames:
            raise InvalidStudyError(self.path, f"(7FE0,0010) Pixel Data holds {n_fragments} fragments, too few for {n_frames} frames")
        if self.uid in JPEG2000TransferSyntaxes:
            precision = get_j2k_parameters(first).get("precision")
        elif self.uid in JPEGTransferSyntaxes or self.uid in JPEGLSTransferSyntaxes:
            precision = _get_jpg_parameters(first).get("precision")  # (pydicom's own JPEG header parser)
        else:
            return
        if precision and precision > self.fmt.bits_allocated:
            raise InvalidStudyError(
                self.path, f"the {self.uid.name} data has {precision} bits a sample; "
                f"(0028,0100) Bits Allocated is {self.fmt.bits_allocated}: values would be cut"
            )

    def _decode(self, index: int, plugin: str) -> np.ndarray:
        return pixel_array(self._source, index=index, decoding_plugin=plugin)

    def frame(self, index: int) -> np.ndarray:
        """Raw frame ``index`` (0-based), trying every plugin; the first that works is kept."""
        reasons = []
        for plugin in list(self._plugins):
            try:
                out = self._decode(index, plugin)
            except BaseException as error:  # noqa: BLE001 - every plugin failure is collected
                if is_stop(error):
                    raise
                reasons.append(f"{plugin or 'native'}: {_short(error)}")
                continue
            if plugin != self._plugins[0]:
                self._plugins.remove(plugin)
                self._plugins.insert(0, plugin)
            return out
        if not self.uid.is_compressed:
            raise InvalidStudyError(self.path, f"frame {index} cannot be read: {'; '.join(reasons)}")
        raise UnsupportedError(
            self.path, f"frame {index}: no pixel decoder could decode this {self.uid.name} data "
            f"({'; '.join(reasons)})"
        )

    def iter_frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """Raw frames from ``start`` on, in order, one decoded at a time."""
        index = start
        while index < self.fmt.n_frames:
            plugin = self._plugins[0]
            try:
                for raw in iter_pixels(self._source, indices=range(index, self.fmt.n_frames),
                                       decoding_plugin=plugin):
                    yield raw
                    index += 1
            except BaseException as error:  # noqa: BLE001 - retried frame by frame below
                if is_stop(error):
                    raise
                logger.debug("%s: streaming with %s stopped at frame %d: %s", self.path.name,
                             plugin or "native", index, _short(error))
                yield self.frame(index)
                index += 1
            else:
                if index < self.fmt.n_frames:
                    raise InvalidStudyError(self.path, f"Pixel Data holds {index} frames; "
                                            f"Number of Frames is {self.fmt.n_frames}")


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:300] if text else type(error).__name__
