"""Decoding the frames of one DICOM instance lazily, through pydicom's pixel backends.

Frames are read one at a time (``pydicom.pixels.pixel_array(src, index=i)`` and
``iter_pixels``): decoding frame ``i`` never decodes the others and memory while
iterating does not grow with the number of frames.

For compressed transfer syntaxes the preferred plugins are tried first: pyjpegls (CharLS)
for JPEG-LS, about 2.5-5x faster than pylibjpeg there with identical pixels, then
pylibjpeg for everything else; then the other pure decoders pydicom has (Pillow, its own
RLE decoder). The first plugin that decodes a frame is kept for the next ones, and a
frame it fails on is retried with the others, but only where the failure says the plugin
cannot handle the data (not installed, a bit depth or coding process it lacks): a frame
that a plugin rejects as malformed (truncated, corrupt) is refused with
:class:`~vpimage.errors.InvalidStudyError` naming the frame, even where a more lenient
plugin would return an image for it, because that image is garbage (a truncated JPEG-LS
frame that CharLS rejects comes back from pylibjpeg as a partial picture). Two checks of
their own back this up where a decoder does not complain: a JPEG or JPEG-LS frame must end
with its EOI marker (pylibjpeg decodes a truncated JPEG Lossless frame without a word), and
pydicom's RLE decoder's warning that a segment decoded to more bytes than the frame holds
("non-conformant padding") is taken as corrupt data. Where a JPEG, JPEG-LS or JPEG 2000
codestream is deeper than (0028,0101) Bits Stored, each frame's values are checked to lie
in the stored range (the decoders return the codestream's values, which would read as
brighter than white).
GDCM is the fallback for syntaxes that none of those can decode (pylibjpeg not
installed): it is never handed data that the other decoders rejected, because GDCM 3.x
aborts the whole interpreter (an uncaught C++ exception) on some malformed streams, as
the fuzz test found. A frame that no plugin decodes is refused with
:class:`~vpimage.errors.UnsupportedError` naming each plugin's reason.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, generate_frames, get_frame, parse_basic_offsets, parse_fragments
from pydicom.pixels import get_decoder, iter_pixels, pixel_array
from pydicom.pixels.utils import _get_jpg_parameters, get_j2k_parameters
from pydicom.uid import UID, JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, RLELossless

from vpimage.errors import InvalidStudyError, UnsupportedError
from vpimage.io._pixels import PixelFormat
from vpimage.io._study import dicom_key, is_stop

__all__ = ["FrameDecoder"]

logger = logging.getLogger(__name__)

_PREFERRED = ("pyjpegls", "pylibjpeg")  # pyjpegls decodes JPEG-LS only
_LAST_RESORT = "gdcm"  # only where no other plugin can decode the syntax (module docstring)
_UNDEFINED_LENGTH = 0xFFFFFFFF
# A plugin failure that says the plugin cannot handle the data (rather than that the data is
# broken): only after one of these is the frame retried with another plugin. Messages of
# pydicom's plugins (Pillow: "does not support", "cannot decode N-bit", "only ... are
# supported"; its RLE decoder: "... with N bits allocated"), CharLS ("not supported"),
# libjpeg (-1040 "not supported by the selected profile", -1034 "not available") and
# missing modules. Anything else (CharLS "Invalid JPEG-LS stream", libjpeg "Stream run out
# of data", RLE length mismatches, a Rust panic) is taken as broken data.
_CANNOT_HANDLE = re.compile(
    r"not supported|unsupported|does not support|not implemented|not available|are supported|"
    r"cannot decode|bits allocated|no module named|not installed|is required",
    re.IGNORECASE,
)
_WRAPPED = re.compile(r"^Unable to decode as exceptions were raised by all available plugins:\s*[\w.-]+:\s*")
_PADDING = "non-conformant padding"  # pydicom's RLE decoder: a segment decoded too long
_JPEG_EOI = b"\xff\xd9"
# How a frame's codestream begins, to count the frames of encapsulated data without an offset
# table: JPEG and JPEG-LS with SOI and the next marker's 0xFF (bytes their entropy-coded data
# never holds: ITU-T T.81 B.1.1.5, T.87 A.1), JPEG 2000 with SOC and SIZ (ISO/IEC 15444-1
# A.4.1, A.5.1) or a JP2 file's signature box.
_JPEG_STARTS = (b"\xff\xd8\xff",)
_J2K_STARTS = (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0c\x6a\x50\x20\x20\x0d\x0a\x87\x0a")


class _BrokenFrame(ValueError):
    """Broken data that a plugin returned an image for anyway (found by vpimage's checks)."""


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
        self._key = dicom_key([header], path)  # (names the instance in the log: its file name may hold the patient's)
        self._source = header if in_memory else str(path)
        self._in_memory = in_memory
        self._plugins = _plugins(self.uid, path)
        self._deeper_than_stored = False  # (set by _check_fragments: values must then be checked)
        self._check_pixel_data(header, in_memory)
        # Native and RLE data are read as stored, their unused bits included: set, they say that
        # (0028,0101) Bits Stored is lower than the data (masked, the image would wrap into bands).
        self._unused_bits_read = self._reads_unused_bits(header)
        self._decode_options = {"correct_unused_bits": False} if self._unused_bits_read else {}
        # Where the encoded frames are, for the EOI check of JPEG and JPEG-LS frames (read
        # as pydicom's decoders read them: same offsets, same extended offset table).
        self._eoi_check = self.uid in JPEGTransferSyntaxes or self.uid in JPEGLSTransferSyntaxes
        self._pixel_offset = getattr(header.get_item("PixelData", keep_deferred=True), "value_tell", None)
        self._extended_offsets = None
        if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
            self._extended_offsets = (header.ExtendedOffsetTable, header.ExtendedOffsetTableLengths)

    def _reads_unused_bits(self, header: Dataset) -> bool:
        """Whether frames are read with their bits above Bits Stored, to be checked: unsigned
        native or RLE data with unused bits (JPEG codestreams say their own precision, see
        :meth:`_check_fragments`), unless an overlay of the retired kind is declared in them
        ((60xx,0102) Overlay Bit Position; signed data may hold its sign there)."""
        fmt = self.fmt
        if fmt.signed or fmt.bits_stored >= fmt.bits_allocated:
            return False
        if self.uid.is_compressed and self.uid != RLELossless:
            return False
        return not any(tag.group & 0xFF01 == 0x6000 and tag.element == 0x0102 for tag in header.keys())

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
        fragment only (and the first bytes of each where the frames have no offset table):
        as many frames as (0028,0008) Number of Frames says (a header that says fewer would
        drop the rest of the run unseen), which are the entries of an offset table, else one
        fragment each in RLE (PS3.5 A.4.2), else, in the JPEG family, the fragments that begin
        a codestream (pydicom splits more fragments than frames at the codestreams' ends, and
        reads only as many as the header says), a JPEG or JPEG 2000 codestream of
        the size (0028,0010) Rows and (0028,0011) Columns say (its pixels would be reshaped
        to theirs), and no deeper than (0028,0100) Bits Allocated (deeper values would be
        cut to fit); data deeper than
        (0028,0101) Bits Stored has its values checked frame by frame."""
        n_frames = self.fmt.n_frames
        jpeg = self.uid in JPEGTransferSyntaxes or self.uid in JPEGLSTransferSyntaxes
        starts = _J2K_STARTS if self.uid in JPEG2000TransferSyntaxes else _JPEG_STARTS if jpeg else None
        with io.BytesIO(header.PixelData) if in_memory else open(self.path, "rb") as stream:
            if not in_memory:
                stream.seek(element.value_tell)
            try:
                offsets = parse_basic_offsets(stream)
                n_fragments, positions = parse_fragments(stream)  # (puts the stream back)
                first = next(generate_fragments(stream), b"")
            except (ValueError, EOFError, OSError) as error:
                raise InvalidStudyError(self.path, f"(7FE0,0010) Pixel Data items are malformed: {_short(error)}") from None
            by_starts = starts and n_fragments > n_frames and not offsets and "ExtendedOffsetTable" not in header
            begun = _frames_begun(stream, positions, starts) if by_starts else n_frames
        tables = [("Basic Offset Table", len(offsets))]
        if "ExtendedOffsetTable" in header:
            tables.append(("(7FE0,0001) Extended Offset Table", len(header.ExtendedOffsetTable) // 8))
        for name, count in tables:
            if count and count != n_frames:
                raise InvalidStudyError(self.path, f"the {name} lists {count} frames; (0028,0008) Number of Frames is {n_frames}")
        if n_fragments < n_frames:
            raise InvalidStudyError(self.path, f"(7FE0,0010) Pixel Data holds {n_fragments} fragments, too few for {n_frames} frames")
        if self.uid == RLELossless and n_fragments != n_frames:
            raise InvalidStudyError(self.path, f"(7FE0,0010) Pixel Data holds {n_fragments} fragments, one a frame in "
                                               f"{self.uid.name}; (0028,0008) Number of Frames is {n_frames}")
        if begun != n_frames:
            raise InvalidStudyError(self.path, f"(7FE0,0010) Pixel Data holds {begun} frames: {begun} of its {n_fragments} "
                                               f"fragments begin a {self.uid.name} codestream; "
                                               f"(0028,0008) Number of Frames is {n_frames}")
        if self.uid in JPEG2000TransferSyntaxes:
            precision, size = get_j2k_parameters(first).get("precision"), _j2k_size(first)
        elif jpeg:
            parameters = _get_jpg_parameters(first)  # (pydicom's own JPEG header parser)
            precision, size = parameters.get("precision"), (parameters.get("height"), parameters.get("width"))
        else:
            return
        if None not in size and size != (self.fmt.rows, self.fmt.columns):
            # (the decoders return the codestream's pixels, reshaped to the header's size)
            raise InvalidStudyError(
                self.path, f"the {self.uid.name} data is {size[0]} x {size[1]} px; (0028,0010) Rows and "
                f"(0028,0011) Columns say {self.fmt.rows} x {self.fmt.columns}"
            )
        if precision and precision > self.fmt.bits_allocated:
            raise InvalidStudyError(
                self.path, f"the {self.uid.name} data has {precision} bits a sample; "
                f"(0028,0100) Bits Allocated is {self.fmt.bits_allocated}: values would be cut"
            )
        self._deeper_than_stored = bool(precision and precision > self.fmt.bits_stored)

    @contextmanager
    def _pixel_stream(self):
        """The encapsulated Pixel Data, positioned at its Basic Offset Table item."""
        if self._in_memory:
            with io.BytesIO(self._source.PixelData) as stream:
                yield stream
            return
        with open(self.path, "rb") as stream:
            stream.seek(self._pixel_offset)
            yield stream

    def _encoded_frames(self, start: int) -> Iterator[bytes]:
        """The encoded frames from ``start`` on (only where the EOI check applies)."""
        with self._pixel_stream() as stream:
            frames = generate_frames(stream, number_of_frames=self.fmt.n_frames,
                                     extended_offsets=self._extended_offsets)
            yield from islice(frames, start, self.fmt.n_frames)

    def _check_encoded(self, index: int, data: bytes) -> None:
        """A JPEG or JPEG-LS frame must end with EOI (past any 0x00/0xFF padding): one that
        does not is truncated, and some decoders return a partial image for it unasked."""
        if not data.rstrip(b"\x00\xff").endswith(_JPEG_EOI):
            raise InvalidStudyError(
                self.path, f"frame {index}: the {self.uid.name} data is truncated "
                f"(its {len(data)} bytes do not end with the JPEG EOI marker)"
            )

    def _check_values(self, index: int, raw: np.ndarray) -> None:
        """Values of a frame decoded from a codestream deeper than Bits Stored, or read with its
        unused bits, must lie in the stored range: the header does not describe data beyond it."""
        if not (self._deeper_than_stored or self._unused_bits_read):
            return
        lo, hi = self.fmt.stored_range()
        if raw.min() < lo or raw.max() > hi:
            raise InvalidStudyError(
                self.path, f"frame {index}: the {self.uid.name} data holds values from {raw.min()} to {raw.max()}, "
                f"outside the {lo}..{hi} of (0028,0101) Bits Stored {self.fmt.bits_stored}"
            )

    @contextmanager
    def _watching_padding(self):
        """Turns pydicom's RLE "non-conformant padding" warning (a segment that decoded to more
        bytes than the frame holds: corrupt data, cut to fit) into :class:`_BrokenFrame`;
        other warnings are passed on."""
        if self.uid != RLELossless:
            yield
            return
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        finally:
            for w in caught:
                if _PADDING not in str(w.message):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        padding = [w for w in caught if _PADDING in str(w.message)]
        if padding:
            raise _BrokenFrame(f"the data is corrupt: {_short(padding[0].message)}")

    def _decode(self, index: int, plugin: str) -> np.ndarray:
        with self._watching_padding():
            return pixel_array(self._source, index=index, decoding_plugin=plugin, **self._decode_options)

    def frame(self, index: int) -> np.ndarray:
        """Raw frame ``index`` (0-based), trying every plugin; the first that works is kept.

        A plugin that fails because it cannot handle the data hands over to the next; one
        that fails because the data is broken ends the search: no other plugin's image of
        that frame is used, and the frame is refused with InvalidStudyError."""
        if self._eoi_check:
            with self._pixel_stream() as stream:
                data = get_frame(stream, index, number_of_frames=self.fmt.n_frames,
                                 extended_offsets=self._extended_offsets)
            self._check_encoded(index, data)
        reasons, broken = [], []
        for plugin in list(self._plugins):
            try:
                out = self._decode(index, plugin)
            except BaseException as error:  # noqa: BLE001 - every plugin failure is collected
                if is_stop(error):
                    raise
                reasons.append(f"{plugin or 'native'}: {_reason(error)}")
                if not _cannot_handle(error):
                    broken.append(reasons[-1])
                continue
            if broken:
                raise InvalidStudyError(
                    self.path, f"frame {index}: the {self.uid.name} data is broken ({'; '.join(broken)}); "
                    f"the image {plugin} makes of it is not used"
                )
            self._check_values(index, out)
            if plugin != self._plugins[0]:
                self._plugins.remove(plugin)
                self._plugins.insert(0, plugin)
            return out
        if not self.uid.is_compressed:
            raise InvalidStudyError(self.path, f"frame {index} cannot be read: {'; '.join(reasons)}")
        if len(broken) == len(reasons):
            raise InvalidStudyError(
                self.path, f"frame {index}: the {self.uid.name} data is broken ({'; '.join(reasons)})"
            )
        raise UnsupportedError(
            self.path, f"frame {index}: no pixel decoder could decode this {self.uid.name} data "
            f"({'; '.join(reasons)})"
        )

    def _stream(self, start: int, plugin: str) -> Iterator[np.ndarray]:
        """Frames from ``start`` on decoded by ``plugin`` alone, each checked as in
        :meth:`frame`; a failed check raises (and :meth:`frame` then decides)."""
        pixels = iter_pixels(self._source, indices=range(start, self.fmt.n_frames), decoding_plugin=plugin,
                             **self._decode_options)
        encoded = self._encoded_frames(start) if self._eoi_check else None
        try:
            index = start
            while True:
                with self._watching_padding():
                    try:
                        raw = next(pixels)
                    except StopIteration:
                        return
                if encoded is not None:
                    self._check_encoded(index, next(encoded, b""))
                self._check_values(index, raw)
                yield raw
                index += 1
        finally:
            pixels.close()
            if encoded is not None:
                encoded.close()

    def iter_frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """Raw frames from ``start`` on, in order, one decoded at a time."""
        index = start
        while index < self.fmt.n_frames:
            plugin = self._plugins[0]
            try:
                for raw in self._stream(index, plugin):
                    yield raw
                    index += 1
            except BaseException as error:  # noqa: BLE001 - retried frame by frame below
                if is_stop(error):
                    raise
                logger.debug("instance %s: streaming with %s stopped at frame %d: %s", self._key,
                             plugin or "native", index, _short(error))
                yield self.frame(index)
                index += 1
            else:
                if index < self.fmt.n_frames:
                    raise InvalidStudyError(self.path, f"Pixel Data holds {index} frames; "
                                            f"Number of Frames is {self.fmt.n_frames}")


def _frames_begun(stream, positions: list[int], starts: tuple[bytes, ...]) -> int:
    """How many of the fragments whose items are at ``positions`` in ``stream`` begin with one
    of ``starts``: the frames of encapsulated data without an offset table."""
    begun = 0
    for position in positions:
        stream.seek(position + 8)  # (past the item's tag and length)
        begun += stream.read(12).startswith(starts)
    return begun


def _j2k_size(codestream: bytes) -> tuple[int | None, int | None]:
    """``(rows, columns)`` of a JPEG 2000 codestream's image area, from its SIZ marker
    segment (ISO/IEC 15444-1 A.5.1: SOC, then SIZ with Lsiz, Rsiz, Xsiz, Ysiz, XOsiz,
    YOsiz), or Nones where the data does not start so (a JP2 file's boxes)."""
    if not codestream.startswith(_J2K_STARTS[0]) or len(codestream) < 24:
        return None, None
    x_size, y_size, x_origin, y_origin = struct.unpack(">4L", codestream[8:24])
    return y_size - y_origin, x_size - x_origin


def _cannot_handle(error: BaseException) -> bool:
    """Whether a plugin's failure says it cannot handle the data (not that the data is broken)."""
    if isinstance(error, _BrokenFrame):
        return False
    return isinstance(error, (NotImplementedError, ImportError)) or bool(_CANNOT_HANDLE.search(str(error)))


def _reason(error: BaseException) -> str:
    """A plugin's failure, without pydicom's "Unable to decode ... plugins: name:" wrapper."""
    return _WRAPPED.sub("", _short(error)) or type(error).__name__


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:300] if text else type(error).__name__
