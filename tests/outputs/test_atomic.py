"""Atomic writes: the old file or the whole new one, never a part, and no litter."""

import os

import pytest

from vpimage.outputs._atomic import atomic_path, write_text_atomic


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "frames.csv"
    path.write_text("old\n")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(path) as temp:
            temp.write_text("half of the new")
            1 / 0
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["frames.csv"]


def test_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "summary.json") as temp:
            temp.write_text("{")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_success_replaces_and_keeps_suffix(tmp_path):
    path = tmp_path / "overlay.mp4"
    with atomic_path(path) as temp:
        assert temp.parent == tmp_path and temp.suffix == ".mp4" and temp != path
        temp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["overlay.mp4"]


def test_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
