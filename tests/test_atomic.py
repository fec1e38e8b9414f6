"""Atomic writes: the old file or the whole new one, never a part, and no litter."""

import os

import pytest

from vpimage._atomic import atomic_path, make_folder, write_text_atomic
from vpimage.errors import OutputError


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


def test_a_file_that_cannot_be_written_is_named_in_an_output_error(tmp_path):
    path = tmp_path / "no such folder" / "summary.json"
    with pytest.raises(OutputError) as info:
        write_text_atomic(path, "{}")
    assert info.value.path == str(path) and "No such file or directory" in info.value.reason
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_made_is_named_in_an_output_error(tmp_path):
    (tmp_path / "a file").write_text("")
    with pytest.raises(OutputError) as info:
        make_folder(tmp_path / "a file" / "out")
    assert info.value.path == str(tmp_path / "a file" / "out") and "cannot be made a folder" in info.value.reason
    assert make_folder(tmp_path / "new" / "out").is_dir()
