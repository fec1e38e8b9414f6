"""masks.npz: what is written is read back; bad files name themselves."""

import numpy as np
import pytest

from vpimage.errors import InvalidStudyError
from vpimage.outputs import read_masks_npz, write_masks_npz


def test_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    masks = rng.random((4, 16, 20)) > 0.5
    toa = np.where(masks.any(axis=0), rng.random((16, 20)), np.nan)
    path = tmp_path / "masks.npz"
    write_masks_npz(path, masks, toa)
    got_masks, got_toa = read_masks_npz(path)
    assert got_masks.dtype == bool and np.array_equal(got_masks, masks)
    assert got_toa.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got_toa), np.isnan(toa))
    np.testing.assert_allclose(got_toa[~np.isnan(toa)], toa[~np.isnan(toa)], rtol=1e-7)


@pytest.mark.parametrize(
    "masks, toa, message",
    [
        (np.zeros((4, 5), bool), np.zeros((4, 5)), "masks"),
        (np.zeros((2, 4, 5), np.uint8), np.zeros((4, 5)), "masks"),
        (np.zeros((2, 4, 5), bool), np.zeros((5, 4)), "time_of_arrival_s"),
    ],
)
def test_write_rejects_bad_shapes(tmp_path, masks, toa, message):
    with pytest.raises(ValueError, match=message):
        write_masks_npz(tmp_path / "masks.npz", masks, toa)


def test_read_bad_files(tmp_path):
    with pytest.raises(InvalidStudyError, match="absent.npz"):
        read_masks_npz(tmp_path / "absent.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidStudyError, match="junk.npz"):
        read_masks_npz(junk)
    other = tmp_path / "other.npz"
    np.savez(other, masks=np.zeros((1, 2, 2), bool))
    with pytest.raises(InvalidStudyError, match="cement"):
        read_masks_npz(other)
