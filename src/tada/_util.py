"""Small helpers shared across tada: the cache folder, file hashes, one-line error text, a value
as a list, and the free cores. Standard library only, so that any module may import it."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

#: Progress bars appear only for work that takes longer than this (tqdm's ``delay``, seconds).
PROGRESS_DELAY_S = 2.0

#: The longest first line :func:`first_line` keeps (longer ones end in ``"..."``).
FIRST_LINE_LIMIT = 300


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """tada's cache folder: ``override``, else ``$TADA_CACHE`` when set and non-empty, else
    ``~/.cache/tada``; ``~`` is expanded in every case. An empty ``override`` counts as none.
    Callers add their own subfolder (``probes``, ``wheels``, ``converted``, ``vision``, ``debian``)."""
    chosen = override or os.environ.get("TADA_CACHE") or Path.home() / ".cache" / "tada"
    return Path(chosen).expanduser()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """The hex sha256 digest (64 lowercase characters) of a file's bytes, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def first_line(exc: object, *, with_type: bool = False) -> str:
    """The first line of ``str(exc)``, stripped and cut to :data:`FIRST_LINE_LIMIT` characters;
    the type's name when the text is empty. ``with_type`` prefixes the type's name
    (``"KeyError: 'id'"``), for messages whose text alone says little."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0].strip()
    line = line if len(line) <= FIRST_LINE_LIMIT else line[:FIRST_LINE_LIMIT - 3] + "..."
    return f"{type(exc).__name__}: {line}" if with_type else line


def as_list(value: Any) -> list:
    """A list or tuple as a list, anything else (None included) as a one-item list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def free_cores(cores: int, loadavg: str | None = None) -> int:
    """How many of ``cores`` other work leaves free: ``cores`` less the processes that have kept
    them busy, at least 1. Busy is the smaller of the 1-minute load average and the tasks runnable
    now other than this one (``/proc/loadavg``'s first and fourth fields; ``loadavg`` is its text,
    read when None): a sustained load counts, a passing spike or a load that just ended does not.
    Where the file is missing (not Linux) every core counts as free.

    Why: torch's OpenMP threads spin at each barrier, so with more threads than free cores a
    merge runs several times slower than with one thread (docs/performance.md, "A loaded machine").
    """
    if loadavg is None:
        try:
            loadavg = Path("/proc/loadavg").read_text()
        except OSError:
            return cores
    try:
        fields = loadavg.split()
        busy = min(float(fields[0]), int(fields[3].split("/")[0]) - 1)
    except (ValueError, IndexError):
        return cores
    return max(1, min(cores, cores - round(busy)))
