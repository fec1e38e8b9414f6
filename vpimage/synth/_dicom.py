"""Write a phantom :class:`~vpimage.synth._run.FluoroRun` as DICOM.

One call writes one run as a legacy or enhanced X-ray object, a secondary capture, or a
series of single-frame instances, in any transfer syntax of :data:`SYNTAXES`, with the
calibration chosen by the caller. The same run, options and seed always give the same
bytes: UIDs come from the seed and the run's content, dates are fixed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

from vpimage import __version__
from vpimage._atomic import atomic_path, make_folder
from vpimage.errors import ConfigError, OutputError
from vpimage.synth._dicom_enhanced import add_enhanced_modules
from vpimage.synth._dicom_modules import (
    StudyUids,
    add_acquisition,
    add_cine,
    add_display_shutter,
    add_general_image,
    add_identity,
    add_image_pixel,
    add_positioner,
    ds_string,
)
from vpimage.synth._dicom_syntax import SYNTAXES, encode_pixel_data
from vpimage.synth._run import FluoroRun

__all__ = ["CALIBRATIONS", "OBJECTS", "SYNTAXES", "check_bits_stored", "checked_calibration", "write_dicom"]

logger = logging.getLogger(__name__)

_XA = UID("1.2.840.10008.5.1.4.1.1.12.1")
_XRF = UID("1.2.840.10008.5.1.4.1.1.12.2")
_ENHANCED_XA = UID("1.2.840.10008.5.1.4.1.1.12.1.1")
_ENHANCED_XRF = UID("1.2.840.10008.5.1.4.1.1.12.2.1")
_SC_WORD = UID("1.2.840.10008.5.1.4.1.1.7.3")

#: Object name -> SOP Class UID of what :func:`write_dicom` writes.
OBJECTS: dict[str, UID] = {
    "xa": _XA,
    "xrf": _XRF,
    "enhanced-xa": _ENHANCED_XA,
    "enhanced-xrf": _ENHANCED_XRF,
    "sc": _SC_WORD,
    "xa-series": _XA,
    "xrf-series": _XRF,
}

#: How the pixel size is recorded: detector spacing with the source distances, detector
#: spacing with the magnification factor, spacing at the patient plane, or nothing.
CALIBRATIONS: tuple[str, ...] = ("distances", "magnification", "pixel-spacing", "none")

# Calibrations each kind of object can carry: the enhanced IODs have neither Pixel
# Measures nor a magnification factor, the secondary capture has no X-ray geometry.
_ALLOWED_CALIBRATIONS = {
    "xa": CALIBRATIONS,
    "xrf": CALIBRATIONS,
    "xa-series": CALIBRATIONS,
    "xrf-series": CALIBRATIONS,
    "enhanced-xa": ("distances", "none"),
    "enhanced-xrf": ("distances", "none"),
    "sc": ("pixel-spacing", "none"),
}

_IMPLEMENTATION_CLASS_UID = generate_uid(entropy_srcs=["vpimage", "implementation"])


class _Options(NamedTuple):
    obj: str
    syntax: str
    calibration: str
    seed: int


def write_dicom(
    run: FluoroRun,
    out: str | os.PathLike,
    *,
    obj: str = "xa",
    syntax: str = "explicit-le",
    calibration: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write ``run`` as DICOM.

    Parameters
    ----------
    run : FluoroRun
        Frames ``[frames, rows, cols]`` (uint16), times (s), geometry.
    out : str or PathLike
        The file to write; for ``"xa-series"`` and ``"xrf-series"`` a folder (created if
        needed) that receives ``0001.dcm``, ``0002.dcm``, ... one per frame.
    obj : {'xa', 'xrf', 'enhanced-xa', 'enhanced-xrf', 'sc', 'xa-series', 'xrf-series'}
        The object written (:data:`OBJECTS`): legacy multi-frame X-Ray Angiographic or
        Radiofluoroscopic image, their enhanced forms with per-frame functional groups,
        a Multi-frame Grayscale Word Secondary Capture, or a series of single-frame
        XA / RF instances.
    syntax : str
        A transfer syntax name of :data:`SYNTAXES` (default ``"explicit-le"``).
    calibration : {'distances', 'magnification', 'pixel-spacing', 'none'}, optional
        By default the object's first: ``"distances"`` for the X-ray objects,
        ``"pixel-spacing"`` for the secondary capture. ``"distances"``: Imager Pixel
        Spacing (mm at the detector) with Distance Source to Detector and to Patient (mm;
        in enhanced objects the X-Ray Geometry functional group's Distance Source to
        Isocenter and to Detector);
        ``"magnification"``: Imager Pixel Spacing with Estimated Radiographic
        Magnification Factor; ``"pixel-spacing"``: Pixel Spacing (mm at the isocentre)
        with Pixel Spacing Calibration Type GEOMETRY; ``"none"``: no pixel size at all.
        Legacy XA/XRF objects take all four; enhanced objects only ``"distances"`` and
        ``"none"`` (their IODs have no Pixel Measures nor magnification factor; without
        calibration they are written as DERIVED images, since ORIGINAL ones must carry
        Imager Pixel Spacing); the secondary capture only ``"pixel-spacing"`` and
        ``"none"`` (it has no X-ray geometry).
    seed : int
        Seeds the UIDs: the same run, options and seed give identical bytes.

    Returns
    -------
    list of Path
        The files written, in frame order (one for a multi-frame object).

    Raises
    ------
    ConfigError
        An unknown ``obj``, ``syntax`` or ``calibration``, a calibration the object
        cannot carry, a syntax no installed plugin can encode, a run whose frames
        do not fit its own description (shape, dtype, bits stored, times), or bits stored
        the object does not allow (see :func:`check_bits_stored`).

    Notes
    -----
    The legacy XA, XRF and secondary capture IODs allow only MONOCHROME2; a MONOCHROME1
    run is still written as is (real archives hold such files) and a warning is
    logged. The enhanced objects allow both, with the matching Presentation LUT Shape.
    """
    options = _Options(obj, syntax, checked_calibration(obj, syntax, calibration), int(seed))
    frames = _checked_frames(run)
    check_bits_stored(obj, run.bits_stored)
    if run.photometric == "MONOCHROME1" and not obj.startswith("enhanced-"):
        logger.warning("the %s IOD allows only MONOCHROME2; writing MONOCHROME1 as archives do", obj)
    uids = _make_uids(run, options)
    if obj.endswith("-series"):
        folder = Path(out)  # (made by the first write)
        paths = [folder / f"{index + 1:04d}.dcm" for index in range(frames.shape[0])]
        _check_series_folder(folder, paths)
        for index, path in enumerate(paths):
            _write_atomically(_build(run, options, uids, index), frames[index : index + 1], options.syntax, path)
    else:
        path = Path(out)
        _write_atomically(_build(run, options, uids, 0), frames, options.syntax, path)
        paths = [path]
    logger.info("wrote %d %s file(s) in %s to %s", len(paths), obj, syntax, out)
    return paths


def _check_series_folder(folder: Path, paths: list[Path]) -> None:
    """Refuse a folder holding anything the series' files ``paths`` will not replace: read as
    one study, its files would mix with the series (an earlier, longer series; another study)."""
    if not folder.is_dir():
        return
    replaced = set(paths)
    others = sorted(p.name for p in folder.iterdir() if p not in replaced)
    if others:
        raise OutputError(folder, f"holds {others[0]}{f' and {len(others) - 1} more' if len(others) > 1 else ''}, "
                                  "which the series would not replace (read as one study, they would mix): "
                                  "write a series into a new or empty folder")


def checked_calibration(obj: str, syntax: str, calibration: str | None) -> str:
    """The calibration :func:`write_dicom` writes ``obj`` with (None: the object's default),
    checked with the object and the syntax before anything is simulated or written.

    Raises
    ------
    ConfigError
        An unknown ``obj``, ``syntax`` or ``calibration``, or a calibration ``obj`` cannot carry.
    """
    allowed = _ALLOWED_CALIBRATIONS.get(obj, CALIBRATIONS)
    calibration = allowed[0] if calibration is None else calibration
    for name, value, known in (
        ("obj", obj, OBJECTS), ("syntax", syntax, SYNTAXES), ("calibration", calibration, CALIBRATIONS)
    ):
        if value not in known:
            raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(known)}")
    if calibration not in allowed:
        raise ConfigError(
            f"calibration {calibration!r} is not allowed in {obj!r} objects; choose one of: {', '.join(allowed)}"
        )
    return calibration


# Bits stored the X-Ray Image Module of the legacy XA and XRF objects enumerates (PS3.3 C.8.7.1), as dciodvfy checks.
_LEGACY_XRAY_BITS = (8, 10, 12, 16)


def check_bits_stored(obj: str, bits_stored: int) -> None:
    """Refuse bits stored that ``obj`` does not allow: the legacy XA and XRF objects (and
    their single-frame series) only 8, 10, 12 or 16; the enhanced and secondary capture
    objects any of 8 to 16 (checked with the frames).

    Raises
    ------
    ConfigError
        Naming the object and the values it allows.
    """
    if obj in ("xa", "xrf", "xa-series", "xrf-series") and bits_stored not in _LEGACY_XRAY_BITS:
        raise ConfigError(
            f"{obj!r} objects store {', '.join(map(str, _LEGACY_XRAY_BITS))} bits; got {bits_stored} "
            "(the enhanced and sc objects take 8 to 16)"
        )


def _checked_frames(run: FluoroRun) -> np.ndarray:
    """``run.frames`` [frames, rows, cols], after checking it against the run's description."""
    frames = np.asarray(run.frames)
    if frames.ndim != 3 or frames.shape[0] < 1 or frames.dtype != np.uint16:
        raise ConfigError(f"run.frames must be uint16 shaped [frames, rows, cols]; got {frames.dtype} {frames.shape}")
    if not 8 <= run.bits_stored <= 16 or int(frames.max()) >= 2**run.bits_stored:
        raise ConfigError(
            f"run.frames must lie below 2 ** bits_stored (bits_stored 8 to 16); got bits_stored "
            f"{run.bits_stored} and a largest value of {int(frames.max())}"
        )
    if np.shape(run.time_s) != frames.shape[:1]:
        raise ConfigError(f"run.time_s must hold one time per frame; got shape {np.shape(run.time_s)}")
    if run.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ConfigError(f"run.photometric must be MONOCHROME1 or MONOCHROME2; got {run.photometric!r}")
    return frames


def _make_uids(run: FluoroRun, options: _Options) -> StudyUids:
    """Study, series and instance UIDs from the seed, the options and the run's content."""
    content = hashlib.sha256(np.ascontiguousarray(run.frames).tobytes())
    content.update(np.asarray(run.time_s, dtype=np.float64).tobytes())
    key = ["vpimage", str(options.seed), content.hexdigest()]
    study = generate_uid(entropy_srcs=key + ["study"])
    series = generate_uid(entropy_srcs=key + [options.obj, options.syntax, options.calibration, "series"])
    n_instances = run.frames.shape[0] if options.obj.endswith("-series") else 1
    instances = [generate_uid(entropy_srcs=[series, "instance", str(i)]) for i in range(n_instances)]
    return StudyUids(study, series, instances)


def _build(run: FluoroRun, options: _Options, uids: StudyUids, index: int) -> Dataset:
    """The dataset (without Pixel Data) of instance ``index`` of the object."""
    ds = Dataset()
    ds.SOPClassUID = OBJECTS[options.obj]
    modality = "RF" if "xrf" in options.obj else "XA"
    add_identity(ds, modality=modality, uids=uids, index=index)
    ds.file_meta = _file_meta(ds)
    add_image_pixel(ds, run)
    if options.obj.endswith("-series"):
        add_general_image(ds, float(run.time_s[index]))
        _add_legacy_xray(ds, run, options.calibration)
        return ds
    ds.NumberOfFrames = run.frames.shape[0]
    if options.obj.startswith("enhanced-"):
        add_enhanced_modules(ds, run, calibration=options.calibration, uids=uids)
        return ds
    add_general_image(ds, 0.0)
    add_cine(ds, run)
    if options.obj == "sc":
        _add_secondary_capture(ds, run, options.calibration)
    else:
        _add_legacy_xray(ds, run, options.calibration)
    return ds


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = _IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = f"VPIMAGE_{__version__}"
    return meta


def _add_legacy_xray(ds: Dataset, run: FluoroRun, calibration: str) -> None:
    """X-Ray Image, X-Ray Acquisition, XA/XRF Positioner and Display Shutter modules."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.PixelIntensityRelationship = "LIN"
    add_acquisition(ds)
    add_positioner(ds, run)
    _add_legacy_calibration(ds, run, calibration)
    add_display_shutter(ds, run.field)


def _add_legacy_calibration(ds: Dataset, run: FluoroRun, calibration: str) -> None:
    if calibration == "none":
        return
    if calibration == "pixel-spacing":
        _add_pixel_spacing(ds, run)
        return
    ds.ImagerPixelSpacing = [ds_string(run.imager_pixel_spacing_mm)] * 2
    if calibration == "distances":
        ds.DistanceSourceToDetector = ds_string(run.source_to_detector_mm)
        ds.DistanceSourceToPatient = ds_string(run.source_to_patient_mm)
    else:
        ds.EstimatedRadiographicMagnificationFactor = ds_string(run.magnification)


def _add_secondary_capture(ds: Dataset, run: FluoroRun, calibration: str) -> None:
    """SC Equipment and SC Multi-frame Image modules (C.8.6.1, C.8.6.3)."""
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    if run.photometric == "MONOCHROME2":
        ds.PresentationLUTShape = "IDENTITY"
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "US"
    if calibration == "pixel-spacing":
        _add_pixel_spacing(ds, run)


def _add_pixel_spacing(ds: Dataset, run: FluoroRun) -> None:
    """Pixel Spacing at the isocentre, mm (Basic Pixel Spacing Calibration macro)."""
    ds.PixelSpacing = [ds_string(run.mm_per_px)] * 2
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelSpacingCalibrationDescription = "Detector spacing over the magnification at the isocentre"


def _write_atomically(ds: Dataset, frames: np.ndarray, syntax: str, path: Path) -> None:
    """Encode ``frames`` [frames, rows, cols] into ``ds`` and write it to ``path``
    through a temporary file in the same folder (no half-written file is ever seen)."""
    encode_pixel_data(ds, frames, syntax)
    uid = ds.file_meta.TransferSyntaxUID
    make_folder(path.parent)
    with atomic_path(path) as temporary:
        ds.save_as(
            temporary, enforce_file_format=True, implicit_vr=uid.is_implicit_VR, little_endian=uid.is_little_endian
        )
