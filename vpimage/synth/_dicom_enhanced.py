"""Modules and functional groups of the Enhanced XA and Enhanced XRF images (PS3.3 A.47, A.48).

What is the same for every frame (technique, detector, geometry, positioner, table,
shutter) goes to the Shared Functional Groups Sequence; each frame's Frame Content
carries its own acquisition datetime and duration. The enhanced IODs have no Cine
module: the frame rate is the Recommended Display Frame Rate of the XA/XRF Multi-frame
Presentation module, the timing the per-frame datetimes.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from vpimage.synth._dicom_modules import (
    KVP,
    PULSE_WIDTH_MS,
    TUBE_CURRENT_MA,
    StudyUids,
    ds_string,
    dt_string,
    frame_intervals_ms,
    nominal_frame_time_ms,
    shutter_values,
    tm_string,
)
from vpimage.synth._run import FluoroRun

__all__ = ["add_enhanced_modules"]


def _item(**attributes) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def add_enhanced_modules(ds: Dataset, run: FluoroRun, *, calibration: str, uids: StudyUids) -> None:
    """Enhanced XA/XRF Image, XA/XRF Acquisition, X-Ray Detector, Multi-frame
    Presentation and the Multi-frame Functional Groups of ``run``.

    Parameters
    ----------
    ds : Dataset
        Holds the identity and Image Pixel modules already.
    run : FluoroRun
        Frames ``[frames, rows, cols]``, times (s), geometry.
    calibration : {'distances', 'none'}
        ``"distances"``: an ORIGINAL image with Imager Pixel Spacing (mm at the
        detector, Frame Pixel Data Properties) and the X-Ray Geometry functional group
        (Distance Source to Isocenter and to Detector, mm). ``"none"``: a DERIVED image
        without either (the IOD requires them of ORIGINAL images).
    uids : StudyUids
        Seeds the Irradiation Event UID.
    """
    original = calibration == "distances"
    image_type = ["ORIGINAL" if original else "DERIVED", "PRIMARY", "FLUOROSCOPY", "NONE"]
    ds.ImageType = image_type
    ds.PlanesInAcquisition = "MONOPLANE"
    ds.PlaneIdentification = "MONOPLANE"
    ds.ContentQualification = "RESEARCH"
    ds.ContentTime = tm_string(0.0)
    ds.AcquisitionDateTime = dt_string(0.0)
    ds.PresentationLUTShape = "INVERSE" if run.photometric == "MONOCHROME1" else "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.AcquisitionContextSequence = []
    _add_acquisition(ds, run)  # required of ORIGINAL images, allowed in DERIVED ones
    _add_detector(ds, run)
    _add_presentation(ds, run)

    shared = _item(
        FrameAnatomySequence=[_frame_anatomy()],
        FrameVOILUTSequence=[
            _item(WindowCenter=ds_string(2 ** (run.bits_stored - 1)), WindowWidth=ds_string(2**run.bits_stored))
        ],
        IrradiationEventIdentificationSequence=[
            _item(IrradiationEventUID=generate_uid(entropy_srcs=[uids.series, "irradiation event"]))
        ],
        FramePixelDataPropertiesSequence=[_pixel_data_properties(run, image_type, original)],
        FrameDetectorParametersSequence=[
            _item(DetectorActiveTime=PULSE_WIDTH_MS, DetectorActivationOffsetFromExposure=0.0)
        ],
        PositionerPositionSequence=[
            _item(
                PositionerPrimaryAngle=ds_string(run.positioner_primary_deg),
                PositionerSecondaryAngle=ds_string(run.positioner_secondary_deg),
            )
        ],
        TablePositionSequence=[
            _item(
                TableTopVerticalPosition=0.0,
                TableTopLongitudinalPosition=0.0,
                TableTopLateralPosition=0.0,
                TableHorizontalRotationAngle=0.0,
                TableHeadTiltAngle=0.0,
                TableCradleTiltAngle=0.0,
            )
        ],
        FrameDisplayShutterSequence=[_item(**shutter_values(run.field), ShutterPresentationValue=0)],
        CollimatorShapeSequence=[_collimator(run)],
    )
    if original:
        shared.XRayGeometrySequence = [
            _item(
                DistanceSourceToIsocenter=float(run.source_to_patient_mm),
                DistanceSourceToDetector=ds_string(run.source_to_detector_mm),
            )
        ]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [
        _item(FrameContentSequence=[content]) for content in _frame_contents(run)
    ]


def _add_acquisition(ds: Dataset, run: FluoroRun) -> None:
    """XA/XRF Acquisition module (C.8.19.3): pulsed fluoroscopy on a C-arm."""
    ds.KVP = ds_string(KVP)
    ds.RadiationSetting = "SC"
    ds.XRayTubeCurrentInmA = float(TUBE_CURRENT_MA)
    ds.ExposureTimeInms = PULSE_WIDTH_MS
    ds.AveragePulseWidth = ds_string(PULSE_WIDTH_MS)
    ds.AcquisitionDuration = float(run.time_s[-1] - run.time_s[0]) + nominal_frame_time_ms(run) / 1000.0
    ds.RadiationMode = "PULSED"
    ds.XRayReceptorType = "DIGITAL_DETECTOR"
    ds.DistanceReceptorPlaneToDetectorHousing = None
    ds.PositionerType = "CARM"
    ds.CArmPositionerTabletopRelationship = "NO"
    ds.AcquiredImageAreaDoseProduct = None


def _add_detector(ds: Dataset, run: FluoroRun) -> None:
    """X-Ray Detector module (C.8.19.5): a flat panel the size of the image, mm."""
    rows, columns = run.frames.shape[1:]
    ds.DetectorType = "SCINTILLATOR"
    ds.PhysicalDetectorSize = [rows * run.imager_pixel_spacing_mm, columns * run.imager_pixel_spacing_mm]


def _add_presentation(ds: Dataset, run: FluoroRun) -> None:
    """XA/XRF Multi-frame Presentation module (C.8.19.7): play all frames at ``run.fps``."""
    ds.PreferredPlaybackSequencing = 0
    ds.FrameDisplaySequence = [
        _item(
            StartTrim=1,
            StopTrim=int(run.frames.shape[0]),
            SkipFrameRangeFlag="DISPLAY",
            RecommendedDisplayFrameRateInFloat=float(run.fps),
            RecommendedViewingMode="",
            DisplayFilterPercentage=None,
        )
    ]


def _collimator(run: FluoroRun) -> Dataset:
    """Collimator Shape macro (C.8.7.3.1.1): the exposed field of ``run`` as collimation."""
    shutter = shutter_values(run.field)
    return _item(**{keyword.replace("Shutter", "Collimator"): value for keyword, value in shutter.items()})


def _frame_anatomy() -> Dataset:
    lumbar_spine = _item(CodeValue="122496007", CodingSchemeDesignator="SCT", CodeMeaning="Lumbar spine")
    return _item(AnatomicRegionSequence=[lumbar_spine], FrameLaterality="U")


def _pixel_data_properties(run: FluoroRun, image_type: list[str], original: bool) -> Dataset:
    item = _item(
        FrameType=image_type,
        PixelIntensityRelationship="LIN",
        PixelIntensityRelationshipSign=1,
        GeometricalProperties="UNIFORM",
        ImageProcessingApplied="NONE",
    )
    if original:
        item.ImagerPixelSpacing = [ds_string(run.imager_pixel_spacing_mm)] * 2
    return item


def _frame_contents(run: FluoroRun) -> list[Dataset]:
    """Frame Content items: acquisition and reference datetime, and duration (ms) per
    frame, the duration being the interval to the next frame."""
    durations = np.append(frame_intervals_ms(run), nominal_frame_time_ms(run))
    return [
        _item(
            FrameAcquisitionNumber=i + 1,
            FrameAcquisitionDateTime=dt_string(t),
            FrameReferenceDateTime=dt_string(t),
            FrameAcquisitionDuration=float(d),
        )
        for i, (t, d) in enumerate(zip(run.time_s, durations))
    ]
