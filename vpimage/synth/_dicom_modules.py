"""DICOM modules shared by the phantom's objects: identity, pixels, timing, geometry.

Each ``add_*`` function fills one module (PS3.3 section named in its docstring) into a
pydicom :class:`~pydicom.dataset.Dataset` from a :class:`~vpimage.synth._run.FluoroRun`.
Dates are fixed (:data:`EPOCH`) so that files are reproducible; the patient is a dummy.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.valuerep import format_number_as_ds

from vpimage import __version__
from vpimage.errors import ConfigError
from vpimage.synth._run import FieldOfView, FieldShape, FluoroRun

__all__ = [
    "EPOCH",
    "KVP",
    "PULSE_WIDTH_MS",
    "TUBE_CURRENT_MA",
    "StudyUids",
    "add_acquisition",
    "add_cine",
    "add_display_shutter",
    "add_general_image",
    "add_identity",
    "add_image_pixel",
    "add_positioner",
    "ds_string",
    "dt_string",
    "frame_intervals_ms",
    "nominal_frame_time_ms",
    "shutter_values",
    "tm_string",
]

#: Acquisition start of every phantom run (time_s == 0).
EPOCH = datetime(2026, 1, 1, 12, 0, 0)
# X-ray technique of a pulsed lumbar fluoroscopy, for the attributes the IODs require.
KVP = 80.0
TUBE_CURRENT_MA = 10
PULSE_WIDTH_MS = 8.0
# Longest value of an element with a 16-bit length field (explicit VR DS), even, bytes.
_MAX_SHORT_VALUE_BYTES = 65534


class StudyUids(NamedTuple):
    """UIDs of one written object: its study, series and SOP instances (one per file)."""

    study: str
    series: str
    instances: list[str]


def ds_string(value: float) -> str:
    """``value`` as a Decimal String of at most 16 characters."""
    return format_number_as_ds(float(value))


def dt_string(time_s: float) -> str:
    """DICOM DateTime (DT) of ``time_s`` seconds after :data:`EPOCH`, to the microsecond."""
    return (EPOCH + timedelta(seconds=float(time_s))).strftime("%Y%m%d%H%M%S.%f")


def tm_string(time_s: float) -> str:
    """DICOM Time (TM) of ``time_s`` seconds after :data:`EPOCH`, to the microsecond."""
    return (EPOCH + timedelta(seconds=float(time_s))).strftime("%H%M%S.%f")


def add_identity(ds: Dataset, *, modality: str, uids: StudyUids, index: int) -> None:
    """Patient (dummy), General Study, General Series, General Equipment, SOP Common.

    ``index`` is the 0-based instance within the series: it picks the SOP Instance UID
    and sets Instance Number to ``index + 1``. Content Date is the fixed :data:`EPOCH`.
    """
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPInstanceUID = uids.instances[index]
    ds.InstanceCreationDate = EPOCH.strftime("%Y%m%d")
    ds.InstanceCreationTime = EPOCH.strftime("%H%M%S")
    ds.PatientName = "Phantom^Vertebroplasty"
    ds.PatientID = "PHANTOM"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uids.study
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = EPOCH.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = EPOCH.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Vertebroplasty phantom"
    ds.Modality = modality
    ds.SeriesInstanceUID = uids.series
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Cement injection"
    ds.BodyPartExamined = "LSPINE"
    ds.Manufacturer = "vpimage"
    ds.ManufacturerModelName = "vpimage phantom"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.BurnedInAnnotation = "NO"


def add_general_image(ds: Dataset, time_s: float) -> None:
    """General Image module (C.7.6.1) timing of an image acquired at ``time_s`` (s)."""
    ds.PatientOrientation = ""  # which side the phantom's anatomy faces is not recorded
    ds.AcquisitionDate = EPOCH.strftime("%Y%m%d")
    ds.AcquisitionDateTime = dt_string(time_s)
    ds.AcquisitionTime = ds.ContentTime = tm_string(time_s)


def add_image_pixel(ds: Dataset, run: FluoroRun) -> None:
    """Image Pixel module (C.7.6.3) without the Pixel Data: 16-bit unsigned words."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = run.photometric
    ds.Rows, ds.Columns = (int(n) for n in run.frames.shape[1:])
    ds.BitsAllocated = 16
    ds.BitsStored = int(run.bits_stored)
    ds.HighBit = int(run.bits_stored) - 1
    ds.PixelRepresentation = 0


def frame_intervals_ms(run: FluoroRun) -> np.ndarray:
    """Intervals between consecutive frames, ms, shape [frames - 1]."""
    return np.diff(np.asarray(run.time_s, dtype=np.float64)) * 1000.0


def nominal_frame_time_ms(run: FluoroRun) -> float:
    """The regular frame interval, ms: the mean interval, or 1000 / fps for one frame."""
    intervals = frame_intervals_ms(run)
    return float(intervals.mean()) if intervals.size else 1000.0 / run.fps


def add_cine(ds: Dataset, run: FluoroRun) -> None:
    """Cine module (C.7.6.5), and the Frame Increment Pointer of the Multi-frame module.

    Regular intervals give Frame Time (0018,1063) in ms; a jittered run gives Frame Time
    Vector (0018,1065), whose first value is 0 and value ``i`` the interval, ms, between
    frames ``i - 1`` and ``i``, to the nanosecond (short values keep long runs within
    the 64 KiB that an explicit-VR DS element can hold).

    Raises
    ------
    ConfigError
        If the Frame Time Vector would still exceed 64 KiB (several thousand frames).
    """
    if run.jittered:
        vector = [ds_string(0.0)] + [ds_string(round(dt, 6)) for dt in frame_intervals_ms(run)]
        length = sum(len(v) + 1 for v in vector)
        if length > _MAX_SHORT_VALUE_BYTES:
            raise ConfigError(
                f"a jittered run of {len(vector)} frames needs a {length}-byte Frame Time Vector "
                f"(0018,1065), over the {_MAX_SHORT_VALUE_BYTES} bytes a DS value can hold; "
                "write it as an enhanced object or a series"
            )
        ds.FrameTimeVector = vector
        pointer = Tag("FrameTimeVector")
    else:
        ds.FrameTime = ds_string(nominal_frame_time_ms(run))
        pointer = Tag("FrameTime")
    ds.FrameIncrementPointer = pointer
    ds.CineRate = int(round(run.fps))
    ds.RecommendedDisplayFrameRate = int(round(run.fps))
    ds.StartTrim = 1
    ds.StopTrim = int(run.frames.shape[0])
    ds.ActualFrameDuration = int(round(PULSE_WIDTH_MS))


def add_acquisition(ds: Dataset) -> None:
    """X-Ray Acquisition module (C.8.7.2) technique values of a pulsed fluoroscopy."""
    ds.KVP = ds_string(KVP)
    ds.RadiationSetting = "SC"  # low dose: fluoroscopy
    ds.XRayTubeCurrent = TUBE_CURRENT_MA
    ds.ExposureTime = int(round(PULSE_WIDTH_MS))
    ds.AveragePulseWidth = ds_string(PULSE_WIDTH_MS)
    ds.RadiationMode = "PULSED"
    ds.Grid = "IN"


def add_positioner(ds: Dataset, run: FluoroRun) -> None:
    """Positioner angles (XA Positioner, C.8.7.5): static C-arm, degrees."""
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = ds_string(run.positioner_primary_deg)
    ds.PositionerSecondaryAngle = ds_string(run.positioner_secondary_deg)


def shutter_values(field: FieldOfView) -> dict[str, object]:
    """Display Shutter (C.7.6.11) attributes of ``field``, 1-based pixel positions.

    A circle gives Center of Circular Shutter (row\\column) and its radius, px, rounded
    to whole pixels (the attributes are Integer Strings); a rectangle gives its four
    edges.
    """
    if FieldShape(field.shape) is FieldShape.CIRCLE:
        row, col = field.centre_rc
        return {
            "ShutterShape": "CIRCULAR",
            "CenterOfCircularShutter": [int(round(row)) + 1, int(round(col)) + 1],
            "RadiusOfCircularShutter": int(round(field.radius_px)),
        }
    return {
        "ShutterShape": "RECTANGULAR",
        "ShutterLeftVerticalEdge": int(field.left) + 1,
        "ShutterRightVerticalEdge": int(field.right) + 1,
        "ShutterUpperHorizontalEdge": int(field.top) + 1,
        "ShutterLowerHorizontalEdge": int(field.bottom) + 1,
    }


def add_display_shutter(ds: Dataset, field: FieldOfView) -> None:
    """Display Shutter module (C.7.6.11): the exposed field, black outside."""
    for keyword, value in shutter_values(field).items():
        setattr(ds, keyword, value)
    ds.ShutterPresentationValue = 0
