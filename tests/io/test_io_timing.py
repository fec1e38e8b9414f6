"""Timing sources and their fallbacks (never a crash, always a warning)."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from vpimage.io._timing import FALLBACK_FPS, instance_timing, series_order, series_timing


def header(**values) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_frame_time_gives_regular_times():
    timing = instance_timing(header(FrameTime="40"), 4, "f.dcm")
    np.testing.assert_allclose(timing.time_s, [0, 0.04, 0.08, 0.12])
    assert timing.fps == pytest.approx(25.0) and timing.source == "FrameTime"


def test_frame_time_vector_accumulates_intervals():
    timing = instance_timing(header(FrameTimeVector=["0", "100", "50", "150"], CineRate=10), 4, "f.dcm")
    np.testing.assert_allclose(timing.time_s, [0, 0.1, 0.15, 0.3])
    assert timing.fps == pytest.approx(3 / 0.3) and timing.source == "FrameTimeVector"


@pytest.mark.parametrize("keyword", ["CineRate", "RecommendedDisplayFrameRate"])
def test_frame_rate_alone_gives_regular_times(keyword):
    timing = instance_timing(header(**{keyword: 8}), 3, "f.dcm")
    np.testing.assert_allclose(timing.time_s, [0, 0.125, 0.25])
    assert timing.source == keyword


def test_per_frame_datetimes_of_enhanced_objects():
    stamps = ["20260101120000.000000", "20260101120000.250000", "20260101120001.000000"]
    ds = header(PerFrameFunctionalGroupsSequence=[
        header(FrameContentSequence=[header(FrameAcquisitionDateTime=s)]) for s in stamps])
    timing = instance_timing(ds, 3, "f.dcm")
    np.testing.assert_allclose(timing.time_s, [0, 0.25, 1.0])
    assert timing.source == "FrameAcquisitionDateTime"


def test_non_monotonic_vector_falls_back_to_the_nominal_rate_with_a_warning():
    with pytest.warns(UserWarning, match="not strictly increasing.*CineRate 10 fps"):
        timing = instance_timing(header(FrameTimeVector=["0", "100", "-150", "100"], CineRate=10), 4, "f.dcm")
    np.testing.assert_allclose(timing.time_s, [0, 0.1, 0.2, 0.3])
    assert timing.fps == 10.0 and "not strictly increasing" in timing.source


def test_no_timing_at_all_assumes_the_fallback_rate_with_a_warning():
    with pytest.warns(UserWarning, match="no frame timing.*assumed 15 fps"):
        timing = instance_timing(header(), 3, "f.dcm")
    np.testing.assert_allclose(timing.time_s, np.arange(3) / FALLBACK_FPS)
    assert timing.fps == FALLBACK_FPS and timing.source.startswith("assumed")


def test_wrong_length_vector_or_garbage_is_a_fallback_not_a_crash():
    with pytest.warns(UserWarning, match="one readable time per frame"):
        instance_timing(header(FrameTimeVector=["0", "100"]), 4, "f.dcm")
    with pytest.warns(UserWarning, match="no frame timing"):
        instance_timing(header(FrameTime="-5"), 4, "f.dcm")


def test_series_times_from_acquisition_datetimes_and_their_order():
    datasets = [header(AcquisitionDateTime=s, InstanceNumber=i) for i, s in
                enumerate(["20260101120000.5", "20260101120000.0", "20260101120001.25"], start=1)]
    order = series_order(datasets)
    assert order == [1, 0, 2]
    timing = series_timing([datasets[i] for i in order], "folder")
    np.testing.assert_allclose(timing.time_s, [0, 0.5, 1.25])


def test_series_falls_back_to_acquisition_date_and_time_then_content_and_names_which():
    datasets = [header(AcquisitionDate="20260101", AcquisitionTime=t) for t in ("120000", "120000.2")]
    timing = series_timing(datasets, "folder")
    np.testing.assert_allclose(timing.time_s, [0, 0.2])
    assert timing.source == "AcquisitionDate/Time"
    datasets = [header(ContentDate="20260101", ContentTime=t) for t in ("120000", "120000.25")]
    timing = series_timing(datasets, "folder")
    np.testing.assert_allclose(timing.time_s, [0, 0.25])
    assert timing.source == "ContentDate/Time"
