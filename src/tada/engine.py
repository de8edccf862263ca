"""The merge engine: stream modules through a method, collect the merged adapter and its report.

load pair → check they fit together → for each module (natural order): read both modules
(memory-mapped), run the method, cast to the output dtype and append it to a ``TensorSpool``
(a temporary file) → config + report. Only one module's tensors (and, for the entry-wise
methods, its dense ΔWs) are in memory at a time: peak memory does not grow with the model.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from .adapters import Adapter, lora_keys, natural_key, output_config
from .errors import TadaError
from .methods import ModuleInput, get_method, make_params
from .models import parse_dtype
from .probes import ProbeStats
from .report import REPORT_VERSION, file_sha256, jsonable, summarize, versions
from .roles import role_of
from .spool import TensorSpool


@dataclass
class MergeResult:
    """The merged adapter (PEFT tensor names → tensors, a disk-backed mapping), its config,
    report and timings."""

    tensors: TensorSpool
    config: dict
    report: dict
    timings: dict[str, float] = field(default_factory=dict)
    out: str | None = None


def plan_modules(task: Adapter, domain: Adapter, allow_partial: bool) -> list[str]:
    """The modules to merge: both adapters' modules must agree unless ``allow_partial``."""
    t, d = set(task.module_names), set(domain.module_names)
    if t != d and not allow_partial:
        only_t, only_d = sorted(t - d, key=natural_key), sorted(d - t, key=natural_key)
        parts = [f"{len(x)} only in the {side} adapter (e.g. {x[0]})" for side, x in
                 (("task", only_t), ("domain", only_d)) if x]
        raise TadaError("the adapters target different modules: " + "; ".join(parts)
                        + ". Pass --allow-partial to treat a missing delta as zero")
    return sorted(t | d, key=natural_key)


def input_summary(adapter: Adapter) -> dict:
    c = adapter.config
    return {"source": adapter.source, "revision": adapter.revision, "base_model": adapter.base_model, "r": c.get("r"),
            "lora_alpha": c.get("lora_alpha"), "use_rslora": bool(c.get("use_rslora")),
            "rank_pattern": c.get("rank_pattern") or {}, "alpha_pattern": c.get("alpha_pattern") or {},
            "modules": len(adapter.module_names),
            "weights_sha256": file_sha256(adapter._weights) if adapter._weights.exists() else None}


def merge_adapters(task: Adapter, domain: Adapter, method: str = "tada", params: Any = None, *,
                   stats_domain: ProbeStats | None = None, stats_general: ProbeStats | None = None,
                   rank: int | None = None, dtype: str | None = None, allow_partial: bool = False,
                   progress: bool = True, base_model: str | None = None,
                   probe_info: dict | None = None) -> MergeResult:
    """Merge two opened adapters with a registered method (the engine behind ``tada.merge``)."""
    spec = get_method(method)
    params = params if isinstance(params, spec.params) else make_params(spec, params)
    if spec.needs_probes and (stats_domain is None or stats_general is None):
        raise TadaError(f"method {method} needs probes: give --domain-probe/--general-probe "
                        "(with --base) or --domain-stats/--general-stats")
    if rank is not None and rank < 1:
        raise TadaError(f"--rank must be ≥ 1, got {rank}")
    warn: list[str] = []
    if task.base_model and domain.base_model and task.base_model != domain.base_model:
        warn.append(f"the adapters name different base models ({task.base_model!r} vs "
                    f"{domain.base_model!r}); shapes are checked module by module")
    names = plan_modules(task, domain, allow_partial)
    out_dtype = parse_dtype(dtype) or _common_dtype(task, domain, warn)

    def module_inputs():
        """One ``ModuleInput`` at a time, in natural order (tensors memory-mapped until used)."""
        for name in names:
            t_mod = task.module(name) if name in task._keys else None
            d_mod = domain.module(name) if name in domain._keys else None
            if t_mod is not None and d_mod is not None and t_mod.shape != d_mod.shape:
                raise TadaError(f"module {name}: task ΔW is {t_mod.shape[0]}×{t_mod.shape[1]} but domain ΔW is "
                                f"{d_mod.shape[0]}×{d_mod.shape[1]}: the adapters are for different base models")
            configured = [a.configured_rank(name) for a in (task, domain) if name in a._keys]
            yield ModuleInput(name, t_mod, d_mod, rank or max(configured),
                              *_probe_vectors(name, (t_mod or d_mod).shape[1], stats_domain, stats_general,
                                              spec.needs_probes))

    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    calibration = None
    if spec.calibrate is not None:  # first pass (TaDA's delta: auto): every module, before any merge
        run_params, calibration = spec.calibrate(
            tqdm(module_inputs(), total=len(names), desc=f"calibrate ({method})", unit="module",
                 disable=not progress, leave=False), params)
    else:
        run_params = params
    tensors = TensorSpool()
    modules_report: dict[str, dict] = {}
    ranks: dict[str, int] = {}
    for module in tqdm(module_inputs(), total=len(names), desc=f"merge ({method})", unit="module",
                       disable=not progress, leave=False):
        name = module.name
        result = spec.fn(module, run_params)
        ka, kb = lora_keys(name)
        tensors[ka] = result.A.to(out_dtype).contiguous()
        tensors[kb] = result.B.to(out_dtype).contiguous()
        ranks[name] = int(result.A.shape[0])
        entry = {"role": role_of(name), "shape": list(module.shape), "rank": ranks[name], **result.info}
        notes = ([f"missing from the {'task' if module.task is None else 'domain'} adapter: treated as zero"]
                 if module.task is None or module.domain is None else []) + result.info.get("notes", [])
        if notes:
            entry["notes"] = notes
        modules_report[name] = entry
    merge_seconds = time.perf_counter() - t0

    extras = task.extra_tensors()
    tensors.update(extras)
    if domain.extra_tensors():
        warn.append(f"{len(domain._extra_keys)} non-LoRA tensors of the domain adapter "
                    "(modules_to_save) are not carried; the task adapter's are")
    config = output_config(task, domain, ranks, base_model=base_model)
    noted = [n for n, m in modules_report.items() if m.get("notes")]
    if noted:
        warn.append(f"{len(noted)} module(s) have notes in the report (e.g. {noted[0]}: "
                    f"{modules_report[noted[0]]['notes'][0]})")
    for w in warn:
        warnings.warn(w, stacklevel=2)
    report = jsonable({
        "report_version": REPORT_VERSION,
        "method": method,
        "params": params,
        "rank": rank,
        "dtype": str(out_dtype).replace("torch.", ""),
        "allow_partial": allow_partial,
        "inputs": {"task": input_summary(task), "domain": input_summary(domain)},
        "probes": probe_info or {},
        "modules_to_save": sorted(extras),
        **({"calibration": calibration} if calibration is not None else {}),
        "summary": summarize(modules_report),
        "warnings": warn,
        "modules": modules_report,
        "versions": versions(),
    })
    return MergeResult(tensors, config, report, {"merge": merge_seconds})


def _common_dtype(task: Adapter, domain: Adapter, warn: list[str]) -> torch.dtype:
    dt, dd = task.dtype, domain.dtype
    if dt != dd:
        warn.append(f"the adapters have different dtypes ({dt} vs {dd}): computed in float64, written in float32")
        return torch.float32
    return dt


def _probe_vectors(name: str, d_in: int, sd: ProbeStats | None, sg: ProbeStats | None,
                   needed: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if not needed:
        return None, None
    out = []
    for which, stats in (("domain", sd), ("general", sg)):
        h = stats.means.get(name)  # type: ignore[union-attr]
        if h is None:
            raise TadaError(f"the {which} probe statistics have no entry for module {name}")
        if h.numel() != d_in:
            raise TadaError(f"module {name}: the {which} probe mean has length {h.numel()} but the "
                            f"adapter's d_in is {d_in}: probes and adapters are for different base models")
        out.append(h.to(torch.float64))
    return out[0], out[1]
