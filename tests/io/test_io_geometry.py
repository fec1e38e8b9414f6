"""Calibration sources, the view, and the field of view from shutters or pixels."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pydicom.dataset import Dataset
from scipy.ndimage import binary_erosion

from vpimage.errors import InvalidStudyError
from vpimage.io._fov import field_of_view
from vpimage.io._geometry import calibration, geometry, view


def header(**values) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_pixel_spacing_wins_over_imager_spacing():
    ds = header(PixelSpacing=["0.2", "0.2"], ImagerPixelSpacing=["0.3", "0.3"], DistanceSourceToDetector="1000",
                DistanceSourceToPatient="500")
    assert calibration(ds, "f.dcm") == (pytest.approx(0.2), "PixelSpacing")


def test_magnification_factor_divides_the_detector_spacing():
    ds = header(ImagerPixelSpacing=["0.3", "0.3"], EstimatedRadiographicMagnificationFactor="1.5")
    assert calibration(ds, "f.dcm") == (pytest.approx(0.2),
                                        "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor")


def test_detector_spacing_alone_is_used_with_a_warning():
    with pytest.warns(UserWarning, match="detector plane"):
        mm, source = calibration(header(ImagerPixelSpacing=["0.3", "0.3"]), "f.dcm")
    assert mm == pytest.approx(0.3) and source == "ImagerPixelSpacing (no magnification: detector plane)"


@pytest.mark.filterwarnings("ignore:.*(detector plane|no pixel spacing)")
@pytest.mark.parametrize(
    ("values", "unknown"),
    [({"ImagerPixelSpacing": ["0.3", "0.3"]}, True),
     ({"ImagerPixelSpacing": ["0.3", "0.3"], "EstimatedRadiographicMagnificationFactor": "1.5"}, False),
     ({"PixelSpacing": ["0.2", "0.2"]}, False),
     ({}, False)],  # uncalibrated: no millimetres at all (no_calibration), not detector ones
)
def test_the_geometry_says_when_the_magnification_is_unknown(values, unknown):
    ds = header(**values)
    assert geometry(ds, np.zeros((8, 8), np.float32), "f.dcm").magnification_unknown is unknown


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # pydicom on the NaN we set
@pytest.mark.parametrize("values", [{"ImagerPixelSpacing": ["0.3", "0.3"], "EstimatedRadiographicMagnificationFactor": "0"},
                                    {"PixelSpacing": ["NaN", "NaN"]},
                                    {"ImagerPixelSpacing": ["0.3", "0.3"], "DistanceSourceToDetector": "-1000",
                                     "DistanceSourceToPatient": "500"}])
def test_zero_negative_or_non_finite_calibration_is_invalid(values):
    with pytest.raises(InvalidStudyError):
        calibration(header(**values), "f.dcm")


@pytest.mark.parametrize(
    ("values", "words"),
    [({"PixelSpacing": ["1e300", "1e300"]}, "PixelSpacing gives 1e+300 mm per px"),
     ({"PixelSpacing": ["0.0001", "0.0001"]}, "PixelSpacing gives 0.0001 mm per px"),
     ({"ImagerPixelSpacing": ["30", "30"], "EstimatedRadiographicMagnificationFactor": "1.5"},
      "EstimatedRadiographicMagnificationFactor gives 20 mm per px")],
)
def test_a_pixel_size_absurd_for_fluoroscopy_is_invalid(values, words):
    # (1e300 mm per px overflowed in the analysis' areas.)
    with pytest.raises(InvalidStudyError, match=re.escape(words + ", absurd for fluoroscopy (not in [0.001, 10])")):
        calibration(header(**values), "f.dcm")


@pytest.mark.parametrize(
    ("values", "words"),
    [({"EstimatedRadiographicMagnificationFactor": "0.2"}, "EstimatedRadiographicMagnificationFactor gives a "
                                                           "magnification of 0.2"),
     ({"EstimatedRadiographicMagnificationFactor": "250"}, "EstimatedRadiographicMagnificationFactor gives a "
                                                           "magnification of 250"),
     ({"EstimatedRadiographicMagnificationFactor": "1e-9"}, "magnification of 1e-09"),
     ({"DistanceSourceToDetector": "1016", "DistanceSourceToPatient": "1"},
      "DistanceSourceToDetector 1016 / DistanceSourceToPatient 1 gives a magnification of 1016"),
     ({"DistanceSourceToDetector": "1000", "DistanceSourceToIsocenter": 300.0}, "magnification of 3.33333"),
     ({"DistanceSourceToDetector": "1016", "DistanceSourceToPatient": "1e-300"}, "magnification of 1.016e+303")],
)
def test_a_magnification_impossible_on_a_c_arm_is_invalid(values, words):
    # Below 1 the patient would be beyond the detector; above 3 no C-arm magnifies
    # (DistanceSourceToPatient 1 made 1.74 mm detector pixels 0.0017 mm and a false stop).
    ds = header(ImagerPixelSpacing=["1.74", "1.74"], **values)
    with pytest.raises(InvalidStudyError, match=re.escape(words) + ".*impossible on a C-arm \\(not in \\[1, 3\\]\\)"):
        calibration(ds, "f.dcm")


@pytest.mark.parametrize(("values", "mm"), [
    ({"EstimatedRadiographicMagnificationFactor": "1"}, 0.3),
    ({"EstimatedRadiographicMagnificationFactor": "3"}, 0.1),
    ({"DistanceSourceToDetector": "900", "DistanceSourceToPatient": "900"}, 0.3),
    ({"DistanceSourceToDetector": "900", "DistanceSourceToPatient": "300"}, 0.1)])
def test_the_ends_of_the_possible_magnifications_are_read(values, mm):
    assert calibration(header(ImagerPixelSpacing=["0.3", "0.3"], **values), "f.dcm")[0] == pytest.approx(mm)


def test_the_ends_of_the_plausible_pixel_sizes_are_read():
    for size in ("0.001", "10"):
        assert calibration(header(PixelSpacing=[size, size]), "f.dcm") == (float(size), "PixelSpacing")


@pytest.mark.parametrize(("position", "expected"), [("LL", "lateral"), ("RL", "lateral"), ("AP", "ap"),
                                                    ("PA", "ap"), ("", "unknown")])
def test_view_position_when_there_are_no_angles(position, expected):
    assert view(header(ViewPosition=position), "f.dcm") == expected


def test_rectangular_and_circular_shutters_intersect():
    ds = header(ShutterShape=["RECTANGULAR", "CIRCULAR"], ShutterLeftVerticalEdge=1, ShutterRightVerticalEdge=10,
                ShutterUpperHorizontalEdge=3, ShutterLowerHorizontalEdge=20, CenterOfCircularShutter=[11, 11],
                RadiusOfCircularShutter=8)
    mask, source = field_of_view(ds, np.zeros((20, 20), np.float32), "f.dcm")
    r, c = np.mgrid[0:20, 0:20]
    expected = (r >= 2) & (r <= 19) & (c <= 9) & ((r - 10) ** 2 + (c - 10) ** 2 <= 64)
    assert source == "shutter"
    np.testing.assert_array_equal(mask, expected)


def test_polygonal_shutter():
    ds = header(ShutterShape="POLYGONAL", VerticesOfThePolygonalShutter=[1, 1, 1, 10, 10, 1])  # row\col pairs
    mask, source = field_of_view(ds, np.zeros((12, 12), np.float32), "f.dcm")
    assert source == "shutter"
    assert mask[0, 0] and mask[0, 8] and mask[8, 0] and not mask[9, 9] and not mask[11, 11]


def test_field_found_from_a_black_border_and_none_without_one():
    frame = np.full((80, 100), 5.0, np.float32)
    r, c = np.mgrid[0:80, 0:100]
    inside = (r - 40) ** 2 + (c - 50) ** 2 <= 35**2
    frame[inside] = 600 + 50 * np.sin(c[inside] / 5.0)  # a textured exposed circle
    frame[40, 45:55] = 5.0  # a dark detail inside stays in the field
    mask, source = field_of_view(Dataset(), frame, "f.dcm")
    assert source == "pixels"
    assert (mask != inside).sum() <= 0.01 * inside.sum()
    flat = np.random.default_rng(0).uniform(100, 900, (80, 100)).astype(np.float32)
    mask, source = field_of_view(Dataset(), flat, "f.dcm")
    assert source == "none" and mask.all()


def _exposed(inside: np.ndarray) -> np.ndarray:
    """A frame: textured exposure on ``inside``, dark (5) elsewhere."""
    c = np.arange(inside.shape[1])[None, :]
    return np.where(inside, 600 + 50 * np.sin(c / 5.0), 5.0).astype(np.float32)


def _assert_field_with_its_trocar(mask: np.ndarray, field: np.ndarray, most_missing: int) -> None:
    """``mask`` is ``field`` but for at most ``most_missing`` px within 2 px of its edge (the
    circle's digitised extremes; the bay's mouth, where the closing disc dips under 1 px in)."""
    assert not (mask & ~field).any()
    assert mask[binary_erosion(field, iterations=2)].all()
    assert (field & ~mask).sum() <= most_missing


def test_a_trocar_clipped_black_where_it_crosses_the_fields_edge_stays_in_the_field():
    # A 5 px shaft at 0 from outside the circle to its middle joins the dark border: it
    # was carved out of the field with it, 377 px down to the shaft's tip.
    r, c = np.mgrid[0:200, 0:240]
    circle = (r - 100) ** 2 + (c - 120) ** 2 <= 90**2
    frame = _exposed(circle)
    frame[(np.abs(r - 100 - 0.2 * (c - 120)) <= 2) & (c <= 120)] = 0.0
    mask, source = field_of_view(Dataset(), frame, "f.dcm")
    assert source == "pixels"
    _assert_field_with_its_trocar(mask, circle, most_missing=10)


def test_a_narrow_collimated_border_stays_border_with_a_trocar_across_it():
    # Blades 3 px from the left and the top, 40 px from the right and the bottom; the
    # shaft crosses the 3 px strip into the field. A frame's outside counts as dark.
    r, c = np.mgrid[0:200, 0:240]
    field = (r >= 3) & (r < 160) & (c >= 3) & (c < 200)
    frame = _exposed(field)
    frame[(np.abs(r - 80) <= 2) & (c <= 100)] = 0.0
    mask, source = field_of_view(Dataset(), frame, "f.dcm")
    assert source == "pixels"
    _assert_field_with_its_trocar(mask, field, most_missing=8)


def test_shutter_without_its_values_is_invalid():
    with pytest.raises(InvalidStudyError, match="CIRCULAR shutter without"):
        field_of_view(header(ShutterShape="CIRCULAR"), np.zeros((5, 5), np.float32), "f.dcm")


@pytest.mark.parametrize("radius", [-8, 0])
def test_a_circular_shutter_radius_not_above_0_is_invalid(radius):
    # A radius of -8 used to be read as 8 (it is squared).
    ds = header(ShutterShape="CIRCULAR", CenterOfCircularShutter=[11, 11], RadiusOfCircularShutter=radius)
    with pytest.raises(InvalidStudyError, match=f"RadiusOfCircularShutter is {radius}; must be > 0 px"):
        field_of_view(ds, np.zeros((20, 20), np.float32), "f.dcm")
