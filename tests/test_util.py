"""tada._util: the cache folder, file hashes, one-line error text, atomic JSON writes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tada._util import cache_root, file_sha256, first_line
from tada.io.atomic import write_json as write_json_atomic


@pytest.fixture
def home(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def test_cache_root_expands_a_tilde_in_tada_cache(monkeypatch, home):
    monkeypatch.setenv("TADA_CACHE", "~/my-cache")
    assert cache_root() == home / "my-cache"


@pytest.mark.parametrize("value", [None, ""])
def test_cache_root_without_tada_cache_is_the_home_cache(monkeypatch, home, value):
    """Unset or empty: ~/.cache/tada (an empty value once became the relative path '.')."""
    if value is None:
        monkeypatch.delenv("TADA_CACHE", raising=False)
    else:
        monkeypatch.setenv("TADA_CACHE", value)
    assert cache_root() == home / ".cache" / "tada"
    assert cache_root().is_absolute()


def test_cache_root_override_wins(monkeypatch, home, tmp_path):
    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "env"))
    assert cache_root(tmp_path / "mine") == tmp_path / "mine"
    assert cache_root("~/mine") == home / "mine"
    assert cache_root() == tmp_path / "env"
    assert cache_root("") == tmp_path / "env"  # an empty override counts as none


def test_probe_cache_dir_honours_a_tilde(monkeypatch, home):
    """The reported bug: TADA_CACHE=~/x put the probe cache in a folder literally named '~'."""
    from tada.probes import cache_dir

    monkeypatch.setenv("TADA_CACHE", "~/x")
    assert cache_dir() == home / "x" / "probes"
    monkeypatch.setenv("TADA_CACHE", "")
    assert cache_dir() == home / ".cache" / "tada" / "probes"


def test_file_sha256_over_several_chunks(tmp_path):
    data = bytes(range(256)) * 40 + b"tail"  # 10244 bytes: many 1000-byte chunks and a short last one
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path, chunk=1000) == expected
    assert file_sha256(str(path)) == expected
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(empty, chunk=7) == hashlib.sha256(b"").hexdigest()


def test_write_json_atomic_writes_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "deep" / "er" / "out.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert path.read_text() == json.dumps({"b": 1, "a": [1, 2]}, indent=2, sort_keys=True)
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]
    write_json_atomic(path, {"b": 2, "a": 0}, indent=None, sort_keys=False)
    assert path.read_text() == '{"b": 2, "a": 0}'
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_write_json_atomic_failure_keeps_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"old": True})
    before = path.read_text()
    with pytest.raises(TypeError):
        write_json_atomic(path, {"new": object()})  # not serialisable, after part of it was written
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "fresh.json", {1, 2})
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_first_line():
    assert first_line(ValueError("  first line  \nsecond line\nthird")) == "first line"
    assert first_line(ValueError("first\nsecond"), with_type=True) == "ValueError: first"
    assert first_line(KeyError("id"), with_type=True) == "KeyError: 'id'"
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line(RuntimeError(" \n "), with_type=True) == "RuntimeError"
    long = first_line(OSError("x" * 400))
    assert len(long) == 300 and long.endswith("...") and long.startswith("x" * 297)
    assert first_line(OSError("y" * 300)) == "y" * 300
    assert first_line("plain text\nmore") == "plain text"
