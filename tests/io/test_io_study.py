"""The Study's frame access: random access, lazy iteration, batches with times and indices."""

from __future__ import annotations

import numpy as np
import pytest
from io_runs import build_run, expected_frames, write

import vpimage.io
from vpimage.errors import ArgumentError
from vpimage.io import FrameBatch


@pytest.fixture
def run_and_study(tmp_path):
    run = build_run(n=7, jittered=True)
    return run, vpimage.io.open(write(run, tmp_path, "xa", "jpeg-ls"))


@pytest.mark.parametrize("batch_size", [1, 3, 7, 10])
def test_batches_cover_every_frame_once_with_times_and_indices(run_and_study, batch_size):
    run, study = run_and_study
    batches = list(study.iter_batches(batch_size))
    assert all(isinstance(b, FrameBatch) for b in batches)
    assert [len(b.index) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    frames = np.concatenate([b.frames for b in batches])
    np.testing.assert_array_equal(frames, expected_frames(run))
    np.testing.assert_array_equal(np.concatenate([b.index for b in batches]), np.arange(7))
    np.testing.assert_allclose(np.concatenate([b.time_s for b in batches]), run.time_s, atol=1e-6)
    assert batches[0].frames.dtype == np.float32 and batches[0].frames.ndim == 3
    assert batches[0].time_s.dtype == np.float64 and batches[0].index.dtype == np.int64


def test_random_access_matches_iteration_and_counts_from_the_end(run_and_study):
    run, study = run_and_study
    expected = expected_frames(run)
    for index in (6, 0, 3, -1):
        np.testing.assert_array_equal(study.frame(index), expected[index])
    with pytest.raises(IndexError):
        study.frame(7)
    with pytest.raises(TypeError, match="whole number; got 1.5"):  # (it read frame 1)
        study.frame(1.5)


@pytest.mark.parametrize("size", [0, -3, 2.5, float("nan"), float("inf"), True])
def test_a_batch_size_that_is_no_whole_number_from_one_is_refused_at_once(run_and_study, size):
    # At once: not at the first batch taken (0 did not fail until then; NaN and inf ended
    # in int()'s own errors).
    with pytest.raises(ArgumentError, match="batch_size must be a whole number >= 1"):
        run_and_study[1].iter_batches(size)


def test_frame_i_decodes_only_frame_i(run_and_study, monkeypatch):
    """Lazy access: pydicom is asked for one frame index, never for the whole array."""
    import vpimage.io._decode as decode

    asked = []
    real = decode.pixel_array

    def spy(src, **kwargs):
        asked.append(kwargs.get("index"))
        return real(src, **kwargs)

    monkeypatch.setattr(decode, "pixel_array", spy)
    run_and_study[1].frame(5)
    assert asked == [5]


def test_key_is_a_short_hash_without_patient_data(run_and_study, tmp_path):
    run, study = run_and_study
    assert len(study.key) == 12 and int(study.key, 16) >= 0
    again = vpimage.io.open(study.path)
    assert again.key == study.key
    other = vpimage.io.open(write(build_run(seed=1), tmp_path, "xa", name="other"))
    assert other.key != study.key
    assert "PHANTOM" not in repr(study) and "Phantom" not in repr(study)


@pytest.mark.parametrize("syntax", ["explicit-le", "jpeg-ls", "rle"])
def test_memory_while_iterating_does_not_grow_with_the_number_of_frames(tmp_path, syntax):
    import tracemalloc

    peaks = {}
    for n in (10, 100):
        study = vpimage.io.open(write(build_run(n=n, rows=96, columns=96), tmp_path, "xa", syntax, name=f"n{n}"))
        tracemalloc.start()
        try:
            count = sum(len(batch.index) for batch in study.iter_batches(4))
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == n
    frame_bytes = 96 * 96 * 4
    assert peaks[100] <= peaks[10] + frame_bytes  # ten times the frames, not one frame more memory
