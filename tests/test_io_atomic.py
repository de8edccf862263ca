"""tada.io.atomic: every file and folder tada writes appears whole or not at all, with the umask's
modes, and leaves no temporary behind."""
from __future__ import annotations

import json
import os
import stat

import pytest

from tada.errors import TadaError
from tada.io.atomic import atomic_file, folder_transaction, write_json, write_text
from tada.io.files import read_json_object


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_take_the_umask_mode_not_mkstemp_600(tmp_path, umask_027):
    write_text(tmp_path / "a" / "x.txt", "hello")
    assert (tmp_path / "a" / "x.txt").read_text() == "hello" and mode(tmp_path / "a" / "x.txt") == 0o640
    os.umask(0o022)
    write_json(tmp_path / "y.json", {"b": 1, "a": 2})
    assert mode(tmp_path / "y.json") == 0o644 and (tmp_path / "y.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "y.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "x.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_folder_transaction_swaps_whole_folders_with_umask_modes(tmp_path, umask_027):
    out = tmp_path / "out"
    with folder_transaction(out) as tmp:
        (tmp / "sub").mkdir(mode=0o700)
        fd = os.open(tmp / "sub" / "f", os.O_WRONLY | os.O_CREAT, 0o600)  # as mkstemp would leave it
        os.write(fd, b"1")
        os.close(fd)
    assert mode(out) == 0o750 and mode(out / "sub") == 0o750 and mode(out / "sub" / "f") == 0o640
    with pytest.raises(RuntimeError), folder_transaction(out) as tmp:
        (tmp / "g").write_text("2")
        raise RuntimeError("failed while filling")
    assert (out / "sub" / "f").read_bytes() == b"1" and not (out / "g").exists()
    with folder_transaction(out) as tmp:
        (tmp / "g").write_text("3")
    assert [p.name for p in out.iterdir()] == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock, no temporaries


def test_folder_transaction_check_refuses_before_writing(tmp_path):
    def refuse():
        raise TadaError("not ours")

    (tmp_path / "out").mkdir()
    with pytest.raises(TadaError, match="not ours"), folder_transaction(tmp_path / "out", check=refuse):
        raise AssertionError("the body must not run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("text, message", [
    (None, "widget not found"), ("{oops", "malformed JSON"), ("[1, 2]", "expected a JSON object, got list"),
    (b"\xff\xfe", "malformed JSON"),
])
def test_the_json_object_reader_says_one_line(tmp_path, text, message):
    path = tmp_path / "w.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(TadaError, match=message) as info:
        read_json_object(path, "widget")
    assert "\n" not in str(info.value)
    path.write_text(json.dumps({"a": 1}))
    assert read_json_object(path, "widget") == {"a": 1}
