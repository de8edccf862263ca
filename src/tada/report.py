"""``tada_report.json``: what was merged, how, and what every module decided (SPEC §8).

The report holds no timings (they go to ``tada_timings.json``), so the same inputs give a
byte-identical report. Non-finite floats (s = +∞) are written as the strings "inf"/"-inf".
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import platform
from pathlib import Path

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


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    import peft
    import safetensors
    import torch
    import transformers

    from . import __version__

    return {"tada": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


def summarize(modules: dict[str, dict]) -> dict:
    """Aggregate numbers a reader wants first: α distribution, kept components, truncation error."""
    out: dict = {"modules": len(modules)}
    alphas = [m["alpha"] for m in modules.values() if isinstance(m.get("alpha"), float)]
    if alphas:
        mean = sum(alphas) / len(alphas)
        out["alpha_mean"] = mean
        out["alpha_std"] = (sum((a - mean) ** 2 for a in alphas) / len(alphas)) ** 0.5
        out["task_dominant_fraction"] = sum(a >= 0.5 for a in alphas) / len(alphas)
    errors = [m["rel_error"] for m in modules.values() if "rel_error" in m]
    if errors:
        out["rel_error_max"] = max(errors)
        out["rel_error_mean"] = sum(errors) / len(errors)
    if any("kept_task" in m for m in modules.values()):
        out["kept_task"] = sum(len(m.get("kept_task", [])) for m in modules.values())
        out["kept_domain"] = sum(len(m.get("kept_domain", [])) for m in modules.values())
        out["components_task"] = sum(len(m.get("sigma_task", [])) for m in modules.values())
        out["components_domain"] = sum(len(m.get("sigma_domain", [])) for m in modules.values())
    notes = sum(len(m.get("notes", [])) for m in modules.values())
    if notes:
        out["modules_with_notes"] = sum(bool(m.get("notes")) for m in modules.values())
    return out
