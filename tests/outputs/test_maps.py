"""masks.npz: what is written is read back; bad files name themselves."""

import pickle
import zipfile

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
        # (The two disagree: either may be the wrong one, and the message says so.)
        (np.zeros((2, 4, 5), bool), np.zeros((5, 4)),
         r"the size of the masks' frames \(4, 5\); got float64 \(5, 4\) \(one of the two is wrong\)"),
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


def _npy(path, array, **options):
    with open(path, "wb") as stream:
        np.save(stream, array, **options)


def _raw_member(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cement", b"not an array")
        archive.writestr("time_of_arrival_s", b"")


def _patched(path, patch):
    """A valid masks.npz with ``patch(data)`` applied to its bytes (a bytearray)."""
    write_masks_npz(path, np.zeros((1, 2, 2), bool), np.zeros((2, 2)))
    data = bytearray(path.read_bytes())
    patch(data)
    path.write_bytes(bytes(data))


def _encrypted(data):
    """Flag the first member encrypted (bit 0 of the flags, 8 bytes into its central directory entry)."""
    data[data.index(b"PK\x01\x02") + 8] |= 1


def _bad_deflate(data):
    """Make the first member's deflate stream start with a block of the reserved type 3."""
    name_length, extra_length = (int.from_bytes(data[at: at + 2], "little") for at in (26, 28))
    data[30 + name_length + extra_length] = 0xFF


@pytest.mark.parametrize(
    "write, reason",
    [
        (lambda path: path.write_bytes(b""), "cannot read the masks: not an npz archive"),
        (lambda path: _npy(path, np.zeros((1, 2, 2), bool)), "cannot read the masks: not an npz archive"),
        (lambda path: _npy(path, np.array([{}], dtype=object), allow_pickle=True),
         "cannot read the masks: not an npz archive"),
        (lambda path: path.write_bytes(pickle.dumps({"cement": 1})), "cannot read the masks: not an npz archive"),
        (lambda path: path.write_bytes(np.random.default_rng(0).bytes(1000)),
         "cannot read the masks: not an npz archive"),
        (lambda path: np.savez(path, time_of_arrival_s=np.zeros((2, 2))), "has no array 'cement'"),
        (_raw_member, "`masks` must be a bool array [frames, rows, cols]; got |S12 ()"),
        (lambda path: _patched(path, _encrypted), "cannot read the masks: File 'cement.npy' is encrypted"),
        (lambda path: _patched(path, _bad_deflate), "cannot read the masks: Error -3 while decompressing data"),
    ],
)
def test_read_what_is_no_masks_npz_names_the_file(tmp_path, write, reason):
    path = tmp_path / "masks.npz"
    write(path)
    with pytest.raises(InvalidStudyError) as error:
        read_masks_npz(path)
    assert error.value.path == str(path)
    assert error.value.reason.startswith(reason)
