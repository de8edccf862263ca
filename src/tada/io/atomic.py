"""Atomic writes: a file or a whole folder appears complete or not at all.

Every file tada writes goes through this module:

- :func:`atomic_file` / :func:`write_bytes` / :func:`write_text` / :func:`write_json`: the data
  goes into a temporary sibling (``.<name>.tmp-<random>``), is flushed and fsynced, gets the mode
  the umask gives a new file (0644 with the usual 022, never mkstemp's 0600), and replaces
  ``path`` in one :func:`os.replace`. A reader sees the old file or the new one, never half of
  one; on any failure (an exception, KeyboardInterrupt) the temporary file is removed and
  ``path`` is left as it was.
- :func:`folder_transaction`: the same for a folder (a merged adapter, an exported base model):
  a temporary sibling folder, filled by the caller, fsynced, then swapped for the old folder in a
  single atomic exchange (Linux ``renameat2``; elsewhere two renames); writers of one path are
  serialised by a lock file beside it; temporaries left by killed writers are removed by the next.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import TadaError


def umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write; on success it is fsynced,
    given the umask's mode and renamed onto ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text, written atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = True) -> Path:
    """``obj`` as JSON (no trailing newline), written atomically."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys))


@contextmanager
def folder_transaction(out: str | os.PathLike, check: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield an empty temporary sibling folder of ``out`` (mode from the umask) for the caller to
    fill; on success every file in it is fsynced and the folder put at ``out`` atomically (an
    existing ``out`` is swapped out and removed). ``check`` runs under the lock before anything is
    written (e.g. refusing to replace a folder that is not ours). On any failure the temporary
    folder is removed and ``out`` is left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _output_lock(out):
        if check is not None:
            check()
        _remove_stale_temporaries(out)
        tmp = _make_temporary(out)
        try:
            yield tmp
            mask = umask()
            for f in tmp.rglob("*"):  # what the caller's libraries wrote (mkstemp: 0600) gets the umask's modes
                if f.is_file():
                    _fsync(f)
                    os.chmod(f, 0o666 & ~mask)
                elif f.is_dir():
                    os.chmod(f, 0o777 & ~mask)
            _swap_into_place(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _make_temporary(out: Path) -> Path:
    """A new empty sibling folder ``.<name>.tmp-<random>``, its mode from the umask (unlike mkdtemp's 0700)."""
    for _ in range(100):
        tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(6)}"
        try:
            os.mkdir(tmp)
            return tmp
        except FileExistsError:
            continue
    raise TadaError(f"cannot create a temporary folder beside {out}")


@contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``.<name>.lock`` beside ``out`` (released when the process dies).

    The holder deletes the file before releasing it; a waiter that then gets the lock of a
    deleted (or replaced) file tries again on the file now at that path, so two writers never
    hold the lock of the same path at once.
    """
    import fcntl

    lock = out.parent / f".{out.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held, now = os.fstat(fd), os.stat(lock)
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                break
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary folders of earlier, killed writers of ``out`` (safe: we hold the lock)."""
    for stale in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unavailable."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Put ``tmp`` at ``out``: a plain rename, or an atomic exchange with an existing ``out``."""
    if not out.exists():
        os.rename(tmp, out)
    elif _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
