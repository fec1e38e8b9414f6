"""Atomic writes: the old file or the whole new one, never a part, and no litter."""

import os
from pathlib import Path

import pytest

from vpimage._atomic import all_or_none, atomic_path, make_folder, remove_file, write_text_atomic
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


def test_a_file_under_a_file_is_named_in_an_output_error_not_hidden_by_the_cleanup(tmp_path):
    # The temporary file cannot be made (its folder is a file), nor then removed: the
    # failure to make it is the one reported, as an OutputError naming the destination.
    (tmp_path / "a file").write_text("")
    path = tmp_path / "a file" / "truth.json"
    with pytest.raises(OutputError) as info:
        write_text_atomic(path, "{}")
    assert info.value.path == str(path) and info.value.reason == "cannot be written: Not a directory"
    assert os.listdir(tmp_path) == ["a file"]


def test_a_folder_at_the_path_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "truth.json").mkdir()
    with pytest.raises(OutputError) as info:
        with atomic_path(tmp_path / "truth.json"):
            raise AssertionError("written before the folder was refused")
    assert info.value.path == str(tmp_path / "truth.json") and info.value.reason == "cannot be written: it is a folder"
    assert os.listdir(tmp_path) == ["truth.json"] and os.listdir(tmp_path / "truth.json") == []


def test_all_or_none_moves_every_file_into_place_when_the_body_ends(tmp_path):
    (tmp_path / "run.dcm").write_text("old")
    with all_or_none():
        write_text_atomic(tmp_path / "run.dcm", "new")
        write_text_atomic(tmp_path / "truth.json", "{}")
        assert (tmp_path / "run.dcm").read_text() == "old" and not (tmp_path / "truth.json").exists()
    assert (tmp_path / "run.dcm").read_text() == "new" and (tmp_path / "truth.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == ["run.dcm", "truth.json"]


def test_all_or_none_changes_no_file_when_a_later_one_cannot_be_written(tmp_path):
    (tmp_path / "run.dcm").write_text("old")
    with pytest.raises(OutputError) as info:
        with all_or_none():
            write_text_atomic(tmp_path / "run.dcm", "new")
            write_text_atomic(tmp_path / "no such folder" / "truth.json", "{}")
    assert info.value.path == str(tmp_path / "no such folder" / "truth.json")
    assert (tmp_path / "run.dcm").read_text() == "old" and os.listdir(tmp_path) == ["run.dcm"]


def test_all_or_none_names_a_file_that_cannot_be_moved_into_place_and_leaves_no_temporary(tmp_path):
    # A folder made at a destination after its file was written: the moves before it are
    # made, it fails, naming its destination, and the temporary files after it are removed.
    with pytest.raises(OutputError) as info:
        with all_or_none():
            for name in ("a.json", "b.json", "c.json"):
                write_text_atomic(tmp_path / name, name)
            (tmp_path / "b.json").mkdir()
    assert info.value.path == str(tmp_path / "b.json")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"] and (tmp_path / "b.json").is_dir()


def test_a_folder_that_cannot_be_made_is_named_in_an_output_error(tmp_path):
    (tmp_path / "a file").write_text("")
    with pytest.raises(OutputError) as info:
        make_folder(tmp_path / "a file" / "out")
    assert info.value.path == str(tmp_path / "a file" / "out") and "cannot be made a folder" in info.value.reason
    assert make_folder(tmp_path / "new" / "out").is_dir()


def test_a_write_error_with_a_traceback_in_its_message_is_one_line(tmp_path):
    # pydicom re-raises a full disk as OSError("With tag (7FE0,0010) got exception: [Errno 28]
    # No space left on device\nTraceback ..."): the CLI printed ten lines.
    message = ("With tag (7FE0,0010) got exception: [Errno 28] No space left on device\n"
               "Traceback (most recent call last):\n  File \"filewriter.py\", line 1\nOSError: ...")
    with pytest.raises(OutputError) as error:
        with atomic_path(tmp_path / "a.dcm"):
            raise OSError(message)
    assert error.value.reason == ("cannot be written: With tag (7FE0,0010) got exception: [Errno 28] "
                                  "No space left on device")
    assert "\n" not in str(error.value)


def test_a_rerun_takes_away_the_temporary_files_a_killed_writer_left(tmp_path):
    # A run killed (SIGKILL, out of memory) while writing left its hidden temporary files, which
    # no rerun removed. Writing a file, or removing it, takes its own away; nobody else's.
    left = {name: tmp_path / f".{name}.0123456789ab.tmp{Path(name).suffix}" for name in ("summary.json", "overlay.mp4")}
    kept = [tmp_path / ".summary.json.notours.tmp.json", tmp_path / ".frames.csv.0123456789ab.tmp.csv"]
    for path in [*left.values(), *kept]:
        path.write_text("half")
    write_text_atomic(tmp_path / "summary.json", "{}")
    assert not left["summary.json"].exists() and left["overlay.mp4"].exists()
    remove_file(tmp_path / "overlay.mp4")  # (an output the rerun does not write)
    assert not left["overlay.mp4"].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in kept] + ["summary.json"])


def test_a_set_keeps_the_temporary_files_it_holds_back(tmp_path):
    # Within all_or_none a file written twice holds its first temporary file back until the end.
    with all_or_none():
        write_text_atomic(tmp_path / "a.json", "first")
        write_text_atomic(tmp_path / "a.json", "second")
    assert (tmp_path / "a.json").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
