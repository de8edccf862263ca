"""``tada_report.json``: what was merged, how, and what every module decided (SPEC §8).

The report holds no timings (they go to ``tada_timings.json``), so the same inputs give a
byte-identical report. Non-finite floats (s = +∞) are written as the strings "inf"/"-inf".
"""
from __future__ import annotations

import dataclasses
import math
import platform
import statistics
from pathlib import Path

from ._version import __version__

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
    import peft
    import safetensors
    import torch
    import transformers

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
    capped = [m["max_rank_rel_error"] for m in modules.values() if "max_rank_rel_error" in m]
    if capped:
        out["max_rank_capped_modules"] = len(capped)
        out["max_rank_rel_error_max"] = max(capped)
    errors = [m["rel_error"] for m in modules.values() if "rel_error" in m]
    if errors:
        out["rel_error_max"] = max(errors)
        out["rel_error_mean"] = sum(errors) / len(errors)
    if any("kept_task" in m for m in modules.values()):
        domains = domain_sides(modules)
        out["kept_task"] = sum(len(m.get("kept_task", [])) for m in modules.values())
        out["kept_domain"] = sum(len(m.get(f"kept_{d}", [])) for m in modules.values() for d in domains)
        out["components_task"] = sum(len(m.get("sigma_task", [])) for m in modules.values())
        out["components_domain"] = sum(len(m.get(f"sigma_{d}", [])) for m in modules.values() for d in domains)
        out["filter"] = filter_summary(modules)
    notes = sum(len(m.get("notes", [])) for m in modules.values())
    if notes:
        out["modules_with_notes"] = sum(bool(m.get("notes")) for m in modules.values())
    return out


def domain_sides(modules: dict[str, dict]) -> list[str]:
    """The domain adapters' names in a TaDA report: ``domain`` (two adapters), or ``domain``,
    ``domain2``… (K domain adapters, SPEC §6b)."""
    first = next((m for m in modules.values() if "kept_task" in m), {})
    found = [k[len("kept_"):] for k in first if k.startswith("kept_domain")]
    return sorted(found, key=lambda side: int(side[len("domain"):] or 1))


def filter_summary(modules: dict[str, dict]) -> dict:
    """What TaDA's overlap filter (Eq. 5) kept, per adapter and per role: components kept / all
    and the fraction of the adapter's energy Σσ² kept; plus the overlap distribution of every
    compared component (p50/p95/p99/max). Modules that took one delta unchanged (the other
    zero) are left out: nothing was filtered there."""
    filtered = {n: m for n, m in modules.items() if "kept_task" in m}
    sides = ["task", *domain_sides(modules)]
    out: dict = {}
    for side in sides:
        per_role: dict[str, list[float]] = {}
        for m in filtered.values():
            sigma, kept = m[f"sigma_{side}"], m[f"kept_{side}"]
            acc = per_role.setdefault(m["role"], [0, 0, 0.0, 0.0])
            acc[0] += len(kept)
            acc[1] += len(sigma)
            acc[2] += sum(sigma[i] ** 2 for i in kept)
            acc[3] += sum(x ** 2 for x in sigma)
        total = [sum(a[i] for a in per_role.values()) for i in range(4)]
        out[side] = {"kept": total[0], "components": total[1],
                     "energy_kept": total[2] / total[3] if total[3] else 1.0,
                     "by_role": {role: {"kept": a[0], "components": a[1],
                                        "energy_kept": a[2] / a[3] if a[3] else 1.0}
                                 for role, a in sorted(per_role.items())}}
    pooled = [o for m in filtered.values() for side in sides for o in m[f"overlap_{side}"]]
    if pooled:  # a filtered module has ≥ 1 component per side: at least 2 values
        cuts = statistics.quantiles(pooled, n=100, method="inclusive")  # linear, as numpy's default
        out["overlaps"] = {"n": len(pooled), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(pooled)}
    return out
