"""``tada_report.json``: what was merged, how, and what every module decided (SPEC §8).

The report holds no timings (they go to ``tada_timings.json``), so the same inputs give a
byte-identical report. Non-finite floats (s = +∞) are written as the strings "inf"/"-inf".
"""
from __future__ import annotations

import dataclasses
import os
import math
import platform
from collections.abc import Callable
from pathlib import Path

from .._version import __version__

REPORT_NAME = "tada_report.json"
TIMINGS_NAME = "tada_timings.json"
REPORT_VERSION = 1


def jsonable(obj):
    """Make floats JSON-safe (inf → "inf", nan → "nan") and dataclasses/tuples plain."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def versions() -> dict[str, str]:
    """The versions of tada and the libraries a merge depends on, from the installed packages'
    metadata (``importlib.metadata``: microseconds, where importing peft and transformers to read
    ``__version__`` took seconds of every merge); "not installed" for a missing one. torch's local
    build tag (``+cpu``) is its metadata version too."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {"tada": __version__, "torch": installed("torch"), "transformers": installed("transformers"),
            "peft": installed("peft"), "safetensors": installed("safetensors"),
            "python": platform.python_version()}


def summarize(modules: dict[str, dict], method_summary: Callable[[dict[str, dict]], dict] | None = None) -> dict:
    """The numbers a reader wants first: modules, truncation error, notes — and what the method's
    own ``summarize`` hook adds (TaDA: the α distribution and what its filter kept)."""
    out: dict = {"modules": len(modules)}
    capped = [m["max_rank_rel_error"] for m in modules.values() if "max_rank_rel_error" in m]
    if capped:
        out["max_rank_capped_modules"] = len(capped)
        out["max_rank_rel_error_max"] = max(capped)
    errors = [m["rel_error"] for m in modules.values() if "rel_error" in m]
    if errors:
        out["rel_error_max"] = max(errors)
        out["rel_error_mean"] = sum(errors) / len(errors)
    if method_summary is not None:
        out.update(method_summary(modules))
    notes = sum(len(m.get("notes", [])) for m in modules.values())
    if notes:
        out["modules_with_notes"] = sum(bool(m.get("notes")) for m in modules.values())
    return out


def load(source: str | os.PathLike) -> dict:
    """A merge's ``tada_report.json`` (or a merged folder holding one), validated: a JSON object of
    this :data:`REPORT_VERSION` with ``method``, ``inputs``, ``modules`` (an object of objects)
    and ``summary``. Every reader of a report goes through this (one-line errors)."""
    from ..errors import TadaError
    from ..io.files import read_json_object

    p = Path(source)
    if p.is_dir():
        p = p / REPORT_NAME
    report = read_json_object(p, "merge report (is this a folder written by tada merge?)")
    if report.get("report_version") != REPORT_VERSION:
        raise TadaError(f"{p}: not a tada report of version {REPORT_VERSION} "
                        f"(report_version {report.get('report_version')!r})")
    for key, kind in (("method", str), ("inputs", dict), ("modules", dict), ("summary", dict)):
        if not isinstance(report.get(key), kind):
            raise TadaError(f"{p}: malformed tada report (`{key}` missing or not a {kind.__name__})")
    if not all(isinstance(m, dict) for m in report["modules"].values()):
        raise TadaError(f"{p}: malformed tada report (a module entry is not an object)")
    return report
