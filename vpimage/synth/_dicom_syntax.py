"""Transfer syntaxes the phantom writer can store, and how their pixel data is encoded.

Uncompressed syntaxes only need the right byte order; compressed ones are encoded by
pydicom's encoders (pylibjpeg, pyjpegls, its own RLE) or, for the JPEG lossless
processes that pydicom cannot encode, by GDCM (``gdcm.ImageChangeTransferSyntax``).
JPEG Extended 12-bit (1.2.840.10008.1.2.4.51) is not offered: GDCM 3.2 writes it with a
16-bit sample precision that the standard (and every decoder here) rejects.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_encoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from vpimage.errors import ConfigError

__all__ = ["JLS_NEAR_ERROR", "J2K_PSNR_DB", "SYNTAXES", "encode_pixel_data"]

#: Transfer syntax name -> (Transfer Syntax UID, lossless).
SYNTAXES: dict[str, tuple[UID, bool]] = {
    "explicit-le": (ExplicitVRLittleEndian, True),
    "implicit-le": (ImplicitVRLittleEndian, True),
    "explicit-be": (ExplicitVRBigEndian, True),
    "deflated": (DeflatedExplicitVRLittleEndian, True),
    "rle": (RLELossless, True),
    "jpeg-lossless": (JPEGLosslessSV1, True),
    "jpeg-lossless-p14": (JPEGLossless, True),
    "jpeg-ls": (JPEGLSLossless, True),
    "jpeg-ls-near": (JPEGLSNearLossless, False),
    "j2k-lossless": (JPEG2000Lossless, True),
    "j2k": (JPEG2000, False),
}

#: Largest absolute pixel error allowed to the near-lossless JPEG-LS encoder (NEAR).
JLS_NEAR_ERROR = 2
#: Peak signal-to-noise ratio, dB (peak ``2 ** bits_stored - 1``), that lossy JPEG 2000
#: aims at; OpenJPEG reaches it within a fraction of a dB.
J2K_PSNR_DB = 60.0

# Value of Lossy Image Compression Method (0028,2114), PS3.3 C.7.6.1.1.5.1.
_LOSSY_METHOD = {JPEGLSNearLossless: "ISO_14495_1", JPEG2000: "ISO_15444_1"}
# Keyword arguments of pydicom's encoder per transfer syntax.
_PYDICOM_OPTIONS = {
    RLELossless: {},
    JPEGLSLossless: {},
    JPEGLSNearLossless: {"jls_error": JLS_NEAR_ERROR},
    JPEG2000Lossless: {},
    JPEG2000: {"j2k_psnr": [J2K_PSNR_DB]},
}
# pylibjpeg-rle encodes RLE four times faster than pydicom's own Python encoder.
_PREFERRED_PLUGIN = {RLELossless: "pylibjpeg"}
_PIXEL_CONTAINER_CLASS = UID("1.2.840.10008.5.1.4.1.1.12.1")  # X-Ray Angiographic Image
_GDCM_SYNTAX_NAMES = {JPEGLosslessSV1: "JPEGLosslessProcess14_1", JPEGLossless: "JPEGLosslessProcess14"}


def encode_pixel_data(ds: Dataset, frames: np.ndarray, syntax: str) -> None:
    """Store ``frames`` as the Pixel Data of ``ds`` in the transfer syntax ``syntax``.

    Parameters
    ----------
    ds : Dataset
        A dataset whose Image Pixel module (rows, columns, bits, photometric, Number of
        Frames where multi-frame) is already filled; its ``file_meta`` receives the
        Transfer Syntax UID, and lossy syntaxes add Lossy Image Compression (0028,2110),
        its ratio (0028,2112) and method (0028,2114).
    frames : ndarray, uint16, shape [frames, rows, cols]
        Pixel values, all below ``2 ** BitsStored``.
    syntax : str
        A key of :data:`SYNTAXES`.

    Raises
    ------
    ConfigError
        If ``syntax`` is unknown, or no installed plugin can encode it (the message
        names the package that would be needed).
    """
    if syntax not in SYNTAXES:
        raise ConfigError(f"unknown syntax {syntax!r}; choose one of: {', '.join(SYNTAXES)}")
    uid, lossless = SYNTAXES[syntax]
    frames = np.ascontiguousarray(frames, dtype=np.uint16)
    ds.file_meta.TransferSyntaxUID = uid
    if not uid.is_compressed:
        byte_order = "<" if uid.is_little_endian else ">"
        ds.PixelData = frames.astype(f"{byte_order}u2").tobytes()
        ds["PixelData"].VR = "OW"
        return
    if uid in _GDCM_SYNTAX_NAMES:
        fragments = _encode_with_gdcm(ds, frames, uid)
    else:
        fragments = _encode_with_pydicom(ds, frames, uid)
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if not lossless:
        ratio = frames.nbytes / sum(len(f) for f in fragments)
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = [f"{ratio:.2f}"]
        ds.LossyImageCompressionMethod = [_LOSSY_METHOD[uid]]


def _encode_with_pydicom(ds: Dataset, frames: np.ndarray, uid: UID) -> list[bytes]:
    encoder = get_encoder(uid)
    if not encoder.is_available:
        needed = "; ".join(encoder.missing_dependencies)
        raise ConfigError(f"no installed plugin can encode {uid.name}; install one of: {needed}")
    plugin = _PREFERRED_PLUGIN.get(uid, "")
    if plugin not in encoder.available_plugins:
        plugin = ""  # any available one
    template = _pixel_template(ds, frames)
    array = frames if frames.shape[0] > 1 else frames[0]  # pydicom wants [rows, cols] for one frame
    template.compress(uid, array, encoding_plugin=plugin, generate_instance_uid=False, **_PYDICOM_OPTIONS[uid])
    return list(generate_frames(template.PixelData, number_of_frames=frames.shape[0]))


def _encode_with_gdcm(ds: Dataset, frames: np.ndarray, uid: UID) -> list[bytes]:
    """Encode through a temporary file: GDCM's in-memory images abort the interpreter
    when Python frees them in the wrong order, its file reader/writer pair does not."""
    try:
        import gdcm
    except ImportError as exc:
        raise ConfigError(f"{uid.name} needs GDCM to encode: pip install python-gdcm") from exc
    template = _pixel_template(ds, frames)
    template.PixelData = frames.astype("<u2").tobytes()
    template.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with tempfile.TemporaryDirectory(prefix="vpimage-gdcm-") as folder:
        source, target = os.path.join(folder, "in.dcm"), os.path.join(folder, "out.dcm")
        template.save_as(source, enforce_file_format=True)
        reader = gdcm.ImageReader()
        reader.SetFileName(source)
        if not reader.Read():
            raise ConfigError(f"GDCM could not read back the frames to encode {uid.name}")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, _GDCM_SYNTAX_NAMES[uid])))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise ConfigError(f"GDCM could not encode {uid.name}")
        writer = gdcm.ImageWriter()
        writer.SetFileName(target)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise ConfigError(f"GDCM could not write {uid.name}")
        encoded = dcmread(target)
        return list(generate_frames(encoded.PixelData, number_of_frames=frames.shape[0]))


def _pixel_template(ds: Dataset, frames: np.ndarray) -> Dataset:
    """A minimal dataset with only the Image Pixel module of ``ds``, for the encoders.

    It claims the X-Ray Angiographic Image class whatever ``ds`` is: GDCM refuses to read
    Enhanced XRF and to write MONOCHROME1 as RF or secondary capture, and the encoders
    need nothing beyond the Image Pixel module.
    """
    template = Dataset()
    template.file_meta = FileMetaDataset()
    template.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    template.SOPClassUID = template.file_meta.MediaStorageSOPClassUID = _PIXEL_CONTAINER_CLASS
    template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
                    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
        setattr(template, keyword, ds[keyword].value)
    template.NumberOfFrames = frames.shape[0]
    return template
