"""Timing sources and their fallbacks (never a crash, always a warning)."""

from __future__ import annotations

import re
import warnings

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
    with pytest.warns(UserWarning, match="no frame timing"), pytest.warns(UserWarning, match="FrameTime '-5' ignored"):
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


def _no_numpy_warning(record) -> None:
    assert not [w for w in record if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in record]


@pytest.mark.parametrize(
    ("values", "ignored"),
    [({"FrameTime": "1e-320"}, "FrameTime '1e-320'"),
     ({"FrameTime": "1e-300"}, "FrameTime '1e-300'"),
     ({"FrameTime": "0.5"}, "FrameTime '0.5'"),  # 2000 frames/s
     ({"FrameTime": "1e300"}, "FrameTime '1e+300'"),
     ({"FrameTime": "61000"}, "FrameTime '6.1e+04'"),
     ({"CineRate": 2147483647}, "CineRate '2.147e+09'"),
     ({"RecommendedDisplayFrameRate": 1001}, "RecommendedDisplayFrameRate '1001'"),
     ({"RecommendedDisplayFrameRateInFloat": 1e-38}, "RecommendedDisplayFrameRateInFloat '1e-38'")],
)
def test_an_implausible_nominal_interval_or_rate_is_ignored_with_a_warning(values, ignored):
    # Frame intervals must be 1 ms-60 s: 1e-320 ms gave fps inf (not JSON) and all times 0.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        timing = instance_timing(header(**values), 3, "f.dcm")
    messages = [str(w.message) for w in record]
    assert any(m.startswith(f"f.dcm: {ignored} ignored: not a plausible") for m in messages), messages
    assert any("no frame timing; frames taken as regular at an assumed 15 fps" in m for m in messages), messages
    _no_numpy_warning(record)
    np.testing.assert_allclose(timing.time_s, np.arange(3) / FALLBACK_FPS)
    assert timing.fps == FALLBACK_FPS and timing.source.startswith("assumed")


def test_an_implausible_frame_time_gives_way_to_a_plausible_rate():
    with pytest.warns(UserWarning, match="f.dcm: FrameTime '1e-320' ignored"):
        timing = instance_timing(header(FrameTime="1e-320", CineRate=5), 3, "f.dcm")
    np.testing.assert_allclose(timing.time_s, [0, 0.2, 0.4])
    assert timing.fps == 5.0 and timing.source == "CineRate"
    with pytest.warns(UserWarning, match="f.dcm: FrameTime '1e-320' ignored"):
        assert instance_timing(header(FrameTime="1e-320"), 1, "f.dcm").fps == 0.0  # one frame: no rate, not inf


@pytest.mark.parametrize("ends", [("1", "60000"), ("60000", "1")])
def test_the_ends_of_the_plausible_intervals_are_read(ends):
    for ms in ends:
        timing = instance_timing(header(FrameTime=ms), 3, "f.dcm")
        assert timing.fps == pytest.approx(1000 / float(ms)) and timing.source == "FrameTime"
    assert instance_timing(header(CineRate=1000), 3, "f.dcm").source == "CineRate"
    assert instance_timing(header(RecommendedDisplayFrameRateInFloat=1 / 60), 3, "f.dcm").fps == pytest.approx(1 / 60)
    timing = instance_timing(header(FrameTimeVector=["0", *ends]), 3, "f.dcm")
    np.testing.assert_allclose(timing.time_s, np.cumsum([0, *map(float, ends)]) / 1000)


@pytest.mark.parametrize(("vector", "interval"), [(["0", "1e-320", "1e-320", "1e-320"], r"\S+e-32\d s"),
                                                  (["0", "40", "0.5", "40"], r"0\.0005 s"),
                                                  (["0", "40", "40", "1e300"], r"1e\+297 s"),
                                                  (["0", "40", "61000", "40"], r"61 s")])
def test_implausible_frame_time_vector_increments_fall_back_to_the_nominal_rate(vector, interval):
    # Increments of 1e-320 ms gave fps inf plus a bare numpy overflow warning.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        timing = instance_timing(header(FrameTimeVector=vector, CineRate=10), 4, "f.dcm")
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and re.fullmatch(
        f"f.dcm: FrameTimeVector has a frame interval of {interval}, not plausible " + re.escape(
            "(must be in [0.001, 60] s); frames taken as regular at CineRate 10 fps"), messages[0]), messages
    np.testing.assert_allclose(timing.time_s, [0, 0.1, 0.2, 0.3])
    assert timing.fps == 10.0 and "not plausible" in timing.source


def test_an_overflowing_frame_time_vector_is_a_fallback_without_a_numpy_warning():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        timing = instance_timing(header(FrameTimeVector=["0", "1e308", "1e308", "1e308"]), 4, "f.dcm")
    _no_numpy_warning(record)
    assert any("not strictly increasing; frames taken as regular at an assumed 15 fps" in str(w.message)
               for w in record)
    assert timing.fps == FALLBACK_FPS


def test_per_frame_datetimes_closer_than_a_millisecond_fall_back():
    stamps = ["20260101120000.000000", "20260101120000.000500", "20260101120000.001000"]
    ds = header(PerFrameFunctionalGroupsSequence=[
        header(FrameContentSequence=[header(FrameAcquisitionDateTime=s)]) for s in stamps])
    with pytest.warns(UserWarning, match="FrameAcquisitionDateTime has a frame interval of 0.0005 s, not plausible"):
        timing = instance_timing(ds, 3, "f.dcm")
    assert timing.fps == FALLBACK_FPS


def test_series_instances_may_be_minutes_apart_but_not_closer_than_a_millisecond():
    datasets = [header(AcquisitionDateTime=s) for s in ("20260101120000", "20260101120500", "20260101121000")]
    timing = series_timing(datasets, "folder")
    np.testing.assert_allclose(timing.time_s, [0, 300, 600])
    datasets = [header(AcquisitionDateTime=s) for s in ("20260101120000.0000", "20260101120000.0005")]
    with pytest.warns(UserWarning, match="folder: .* frame interval of 0.0005 s, not plausible \\(must be at least"):
        timing = series_timing(datasets, "folder")
    assert timing.fps == FALLBACK_FPS
