"""The pre-injection buffer on its own: what it keeps of each frame, what leaving one out
removes, how it reads its frames at another contrast and level, and which contrast most of
its frames showed. The truths are hand-computed on tiny arrays.

The engine's runs test it where it is used: a frame shifted in part is left out of the
baseline (test_baseline_mismatch.py), a first frame at another display gain is read back
(test_display_gain.py), a run whose frames between could not be used (test_short_baseline.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from vpimage.engine._state import EngineState, PreInjectionBuffer


def filled(gains, *, outliers=None) -> PreInjectionBuffer:
    """A buffer of one 2 x 3 px frame per gain: frame ``i`` all ``i``, its grid image all ``10 + i``,
    noise ``0.1 * (i + 1)``, outlier share ``outliers[i]`` (``0.01 * i``), offset ``-i``,
    frame index ``100 + i``; pixel ``i`` of the top row not measured in frame ``i`` (up to 3)."""
    buffer = PreInjectionBuffer()
    outliers = [0.01 * i for i in range(len(gains))] if outliers is None else outliers
    for i, gain in enumerate(gains):
        inside = np.ones((2, 3), bool)
        inside[0, i % 3] = False
        buffer.add(
            np.full((2, 3), float(i), np.float32), np.full((1, 2), 10.0 + i, np.float32), inside,
            noise=0.1 * (i + 1), outliers=outliers[i], gain=gain, offset=np.float32(-i), index=100 + i,
        )
    return buffer


def test_a_buffered_frame_keeps_what_was_measured_of_it_and_the_pixels_all_frames_measure():
    buffer = filled([1.0, 1.0, 1.0])
    assert len(buffer) == 3
    assert [float(frame[0, 0]) for frame in buffer.frames] == [0.0, 1.0, 2.0]
    assert [float(frame[0, 0]) for frame in buffer.coarse] == [10.0, 11.0, 12.0]
    assert buffer.noise == pytest.approx([0.1, 0.2, 0.3])
    assert buffer.index == [100, 101, 102]
    # Each frame left one top-row pixel out: only the bottom row is measured in all three.
    np.testing.assert_array_equal(buffer.inside, [[False, False, False], [True, True, True]])
    assert PreInjectionBuffer().inside is None and len(PreInjectionBuffer()) == 0


def test_leaving_a_frame_out_removes_every_record_of_it():
    buffer = filled([1.0, 1.0, 1.0, 1.0], outliers=[0.01, 0.09, 0.02, 0.03])
    assert buffer.outlier_share == pytest.approx(0.025)  # median of 0.01, 0.02, 0.03, 0.09
    buffer.drop(1)
    assert [float(frame[0, 0]) for frame in buffer.frames] == [0.0, 2.0, 3.0]
    assert [float(frame[0, 0]) for frame in buffer.coarse] == [10.0, 12.0, 13.0]
    assert buffer.noise == pytest.approx([0.1, 0.3, 0.4])
    assert buffer.outliers == [0.01, 0.02, 0.03]
    assert [float(offset) for offset in buffer.offset] == [0.0, -2.0, -3.0]
    assert buffer.index == [100, 102, 103]
    assert buffer.outlier_share == pytest.approx(0.02)
    # Frames 0, 2 and 3 left top-row pixels 0, 2 and 0 out: pixel 1, which only frame 1 left
    # out, is measured again.
    np.testing.assert_array_equal(buffer.inside, [[False, True, False], [True, True, True]])
    assert len(buffer.fields) == 3


def test_reading_the_frames_at_another_contrast_and_level():
    buffer = filled([1.0, 0.5])
    buffer.read_at(0.25, 2.0)
    # (frame + level) * gain: (0 + 0.25) * 2, (1 + 0.25) * 2; the grid images alike; the noise doubled.
    assert [float(frame[1, 2]) for frame in buffer.frames] == [0.5, 2.5]
    assert [float(frame[0, 1]) for frame in buffer.coarse] == [20.5, 22.5]
    assert buffer.noise == pytest.approx([0.2, 0.4])
    assert buffer.gain == [1.0, 0.5] and buffer.index == [100, 101]  # (what was measured stays)


@pytest.mark.parametrize(
    ("gains", "shown"),
    [
        ([1.0, 1.0, 1.15], 1.0),  # one frame of another display
        ([1.0, 1.15, 1.15], 1.15),  # the display changed after the first frame
        ([1.0, 1.0, 1.0, 1.15], 1.0),
        ([1.0, 1.1, 1.2, 1.2], 1.1),  # a gain a frame showed, not the median's 1.15
        ([1.0, 0.85, 0.85, 0.85, 1.0, 0.85], 0.85),  # more than half divided, in any order
        # Only half of them divided: the reference's contrast, whichever way the display changed.
        ([1.0, 1.0, 1.15, 1.15], 1.0),
        ([0.85, 0.85, 1.0, 1.0], 1.0),
        # All divided, two gains: the one nearer 1, either way.
        ([0.8, 0.8, 0.9, 0.9], 0.9),
        ([1.1, 1.1, 1.2, 1.2], 1.1),
    ],
)
def test_the_contrast_most_buffered_frames_showed(gains, shown):
    assert filled(gains).shown_gain == shown


def test_an_engine_state_starts_with_an_empty_buffer_of_its_own():
    first, second = (EngineState(rows=2, columns=3, speed=None, alerts=None, corners=None, corners_anchor_frame=None)
                     for _ in range(2))
    first.pre_injection.add(np.zeros((2, 3)), np.zeros((1, 2)), np.ones((2, 3), bool), noise=0.1, outliers=0.0,
                            gain=1.0, offset=0.0, index=0)
    assert len(first.pre_injection) == 1 and len(second.pre_injection) == 0
    assert first.outlier_reference is None  # (the engine sets it from the buffer)
