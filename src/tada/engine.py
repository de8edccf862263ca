"""The merge engine: stream modules through a method, collect the merged adapter and its report.

load pair → check they fit together → for each module (natural order): read both modules
(memory-mapped), run the method, cast to the output dtype and append it to a ``TensorSpool``
(a temporary file) → config + report. Only one module's tensors (and, for the entry-wise
methods, its dense ΔWs, in buffers reused from module to module: ``Workspace``) are in memory at a
time: peak memory does not grow with the model.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

import torch

from ._util import PROGRESS_DELAY_S, file_sha256
from .adapters import Adapter, lora_keys, natural_key, output_config
from .errors import TadaError
from .lowrank import LowRank, truncate_lowrank
from .methods import ModuleInput, ModuleResult, get_method, make_params
from .methods.base import side_names, Workspace
from .models import parse_dtype
from .probes import ProbeStats
from .report import REPORT_VERSION, jsonable, summarize, versions
from .roles import role_of
from .io.spool import TensorSpool


@dataclass
class MergeResult:
    """The merged adapter (PEFT tensor names → tensors, a disk-backed mapping), its config,
    report and timings."""

    tensors: TensorSpool
    config: dict
    report: dict
    timings: dict[str, float] = field(default_factory=dict)
    out: str | None = None


def plan_modules(task: Adapter, domain: Adapter | list[Adapter], allow_partial: bool) -> list[str]:
    """The modules to merge: every adapter's modules must agree unless ``allow_partial``."""
    domains = domain if isinstance(domain, list) else [domain]
    sides = side_names(len(domains))
    sets = [set(a.module_names) for a in (task, *domains)]
    union = set().union(*sets)
    if any(x != union for x in sets) and not allow_partial:
        if len(sets) == 2:
            only = [sorted(sets[0] - sets[1], key=natural_key), sorted(sets[1] - sets[0], key=natural_key)]
        else:
            only = [sorted(union - x, key=natural_key) for x in sets]
        what = "only in the {} adapter" if len(sets) == 2 else "missing from the {} adapter"
        parts = [f"{len(x)} {what.format(side)} (e.g. {x[0]})" for side, x in zip(sides, only) if x]
        raise TadaError("the adapters target different modules: " + "; ".join(parts)
                        + ". Pass `allow_partial` to treat a missing delta as zero")
    return sorted(union, key=natural_key)


def input_summary(adapter: Adapter) -> dict:
    c = adapter.config
    return {"source": adapter.source, "revision": adapter.revision, "base_model": adapter.base_model, "r": c.get("r"),
            "lora_alpha": c.get("lora_alpha"), "use_rslora": bool(c.get("use_rslora")),
            "rank_pattern": c.get("rank_pattern") or {}, "alpha_pattern": c.get("alpha_pattern") or {},
            "modules": len(adapter.module_names),
            "weights_sha256": file_sha256(adapter.weights_file) if adapter.weights_file.exists() else None}


def merge_adapters(task: Adapter, domain: Adapter | list[Adapter], method: str = "tada", params: Any = None, *,
                   stats_domain: ProbeStats | list[ProbeStats] | None = None,
                   stats_general: ProbeStats | None = None,
                   rank: int | None = None, max_rank: int | None = None, dtype: str | None = None,
                   allow_partial: bool = False, progress: bool = True, base_model: str | None = None,
                   probe_info: dict | None = None) -> MergeResult:
    """Merge opened adapters with a registered method (the engine behind ``tada.merge``): one task
    adapter and one domain adapter, or a list of K domain adapters (SPEC §6b) with one domain
    probe statistics each (``stats_domain`` a list in the same order)."""
    domains = domain if isinstance(domain, list) else [domain]
    if not domains:
        raise TadaError("give at least one domain adapter")
    stats_domains = stats_domain if isinstance(stats_domain, list) else [stats_domain]
    spec = get_method(method)
    params = params if isinstance(params, spec.params) else make_params(spec, params, n_inputs=1 + len(domains))
    if spec.needs_probes and len(stats_domains) != len(domains):
        raise TadaError(f"{len(domains)} domain adapters need as many domain probes, got {len(stats_domains)} "
                        "(give `domain_probe` or `domain_stats` once per domain adapter, in the same order)")
    if spec.needs_probes and (any(x is None for x in stats_domains) or stats_general is None):
        raise TadaError(f"method {method} needs probes: give `domain_probe`/`general_probe` "
                        "(with `base`) or `domain_stats`/`general_stats`")
    if rank is not None and rank < 1:
        raise TadaError(f"`rank` must be ≥ 1, got {rank}")
    if max_rank is not None and max_rank < 1:
        raise TadaError(f"`max_rank` must be ≥ 1, got {max_rank}")
    if rank is not None and max_rank is not None and rank > max_rank:
        raise TadaError(f"`rank` {rank} is above `max_rank` {max_rank}")
    warn: list[str] = []
    sides = side_names(len(domains))
    for d in domains:
        if task.base_model and d.base_model and task.base_model != d.base_model:
            warn.append(f"the adapters name different base models ({task.base_model!r} vs "
                        f"{d.base_model!r}); shapes are checked module by module")
    names = plan_modules(task, domains, allow_partial)
    check_modules = getattr(params, "check_modules", None)
    if check_modules is not None:  # e.g. TaDA's τ overrides: each must match a module
        check_modules(names)
    out_dtype = parse_dtype(dtype) or _common_dtype([task, *domains], warn)

    workspace = Workspace()  # the entry-wise methods' dense buffers, reused module to module

    def module_inputs():
        """One ``ModuleInput`` at a time, in natural order (tensors memory-mapped until used)."""
        for name in names:
            mods = [a.module(name) if name in a.tensor_keys else None for a in (task, *domains)]
            present = [(side, m) for side, m in zip(sides, mods) if m is not None]
            first_side, first = present[0]
            for side, m in present[1:]:
                if m.shape != first.shape:
                    raise TadaError(f"module {name}: {first_side} ΔW is {first.shape[0]}×{first.shape[1]} but "
                                    f"{side} ΔW is {m.shape[0]}×{m.shape[1]}: the adapters are for different "
                                    "base models")
            configured = [a.configured_rank(name) for a in (task, *domains) if name in a.tensor_keys]
            h_domains, h_general = _probe_vectors(name, first.shape[1], stats_domains, stats_general,
                                                  spec.needs_probes)
            yield ModuleInput(name, mods[0], mods[1], rank or max(configured), h_domains[0], h_general,
                              tuple(mods[2:]), tuple(h_domains[1:]), workspace=workspace)

    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    calibration = None
    kept = KeptInputs(spec.calibrate is not None
                      and components_bytes([task, *domains], names) <= KEEP_BETWEEN_PASSES_BYTES)
    if spec.calibrate is not None:  # first pass (TaDA's delta: auto): every module, before any merge
        run_params, calibration = spec.calibrate(
            tqdm(kept.remember(module_inputs()), total=len(names), desc=f"calibrate ({method})", unit="module",
                 disable=not progress, delay=PROGRESS_DELAY_S, leave=False), params)
    else:
        run_params = params
    tensors = TensorSpool()
    modules_report: dict[str, dict] = {}
    ranks: dict[str, int] = {}
    second_pass = kept.replay(len(names)) or module_inputs()
    for module in tqdm(second_pass, total=len(names), desc=f"merge ({method})", unit="module",
                       disable=not progress, delay=PROGRESS_DELAY_S, leave=False):
        name = module.name
        result = spec.fn(module, run_params)
        if max_rank is not None and result.A.shape[0] > max_rank:
            result = cap_rank(result, max_rank)
        ka, kb = lora_keys(name)
        tensors[ka] = result.A.to(out_dtype).contiguous()
        tensors[kb] = result.B.to(out_dtype).contiguous()
        ranks[name] = int(result.A.shape[0])
        entry = {"role": role_of(name), "shape": list(module.shape), "rank": ranks[name], **result.info}
        notes = [f"missing from the {side} adapter: treated as zero"
                 for side, m in zip(module.sides, module.inputs) if m is None] + result.info.get("notes", [])
        if notes:
            entry["notes"] = notes
        modules_report[name] = entry
    merge_seconds = time.perf_counter() - t0

    extras = task.extra_tensors()
    tensors.update(extras)
    for side, d in zip(sides[1:], domains):
        if d.extra_tensors():
            warn.append(f"{len(d.extra_keys)} non-LoRA tensors of the {side} adapter "
                        "(modules_to_save) are not carried; the task adapter's are")
    config = output_config(task, domains, ranks, base_model=base_model)
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
        **({"max_rank": max_rank} if max_rank is not None else {}),
        "dtype": str(out_dtype).replace("torch.", ""),
        "allow_partial": allow_partial,
        "inputs": ({"task": input_summary(task), "domain": input_summary(domains[0])} if len(domains) == 1 else
                   {"task": input_summary(task), "domains": {side: input_summary(d) for side, d in
                                                             zip(sides[1:], domains)}}),
        "probes": probe_info or {},
        "modules_to_save": sorted(extras),
        **({"calibration": calibration} if calibration is not None else {}),
        "summary": summarize(modules_report, spec.summarize),
        "warnings": warn,
        "modules": modules_report,
        "versions": versions(),
    })
    return MergeResult(tensors, config, report, {"merge": merge_seconds})


#: The most memory the engine spends keeping a first pass's module inputs (with the components
#: the pass computes) for the merge pass; above it the merge pass reads and decomposes every module
#: again, one at a time. 1 GiB holds a Llama-2-7B-shaped pair's q/k/v/o components (256 MiB).
KEEP_BETWEEN_PASSES_BYTES = 1 << 30


def components_bytes(adapters: list[Adapter], names: list[str]) -> int:
    """The float64 components of every input module (U: d_out×r and V: d_in×r each), from the
    files' headers: what keeping a first pass's module inputs for the merge pass costs."""
    return sum((d_out + d_in) * r * 8 for a in adapters for name in names if name in a.tensor_keys
               for d_out, d_in, r in [a.factor_shape(name)])


class KeptInputs:
    """A first pass's module inputs kept for the merge pass (``keep``), or none kept."""

    def __init__(self, keep: bool) -> None:
        self.inputs: list[ModuleInput] | None = [] if keep else None

    def remember(self, inputs: Iterator[ModuleInput]) -> Iterator[ModuleInput]:
        for module in inputs:
            if self.inputs is not None:
                self.inputs.append(module)
            yield module

    def replay(self, n: int) -> Iterator[ModuleInput] | None:
        """The kept inputs, each released once taken, or None unless all ``n`` were kept."""
        if not self.inputs or len(self.inputs) != n:
            return None
        kept, self.inputs = self.inputs, None
        kept.reverse()

        def release() -> Iterator[ModuleInput]:
            while kept:
                yield kept.pop()
        return release()


def cap_rank(result: ModuleResult, max_rank: int) -> ModuleResult:
    """A module result above ``max_rank`` truncated to it by the low-rank SVD (Eq. 8's route: ΔW
    is never formed); the relative error ‖discarded σ‖/‖σ‖ goes to ``max_rank_rel_error``."""
    tr = truncate_lowrank(LowRank(result.B.to(torch.float64), result.A.to(torch.float64).T), max_rank)
    info = {**result.info, "max_rank_rel_error": tr.rel_error}
    if "rank" in info:
        info["rank_before_cap"] = info.pop("rank")
    return ModuleResult(tr.B, tr.A, info)


def _common_dtype(adapters: list[Adapter], warn: list[str]) -> torch.dtype:
    dtypes = [a.dtype for a in adapters]
    if len(set(dtypes)) > 1:
        shown = " vs ".join(str(d) for d in dtypes)
        warn.append(f"the adapters have different dtypes ({shown}): computed in float64, written in float32")
        return torch.float32
    return dtypes[0]


def _probe_vectors(name: str, d_in: int, sds: list[ProbeStats | None], sg: ProbeStats | None,
                   needed: bool) -> tuple[list[torch.Tensor | None], torch.Tensor | None]:
    """Each domain probe's mean and the general probe's for one module (float64), checked."""
    if not needed:
        return [None] * len(sds), None
    names = ["domain"] if len(sds) == 1 else [f"domain {i + 1}" for i in range(len(sds))]
    out = []
    for which, stats in (*zip(names, sds), ("general", sg)):
        h = stats.means.get(name)  # type: ignore[union-attr]
        if h is None:
            raise TadaError(f"the {which} probe statistics have no entry for module {name}")
        if h.numel() != d_in:
            raise TadaError(f"module {name}: the {which} probe mean has length {h.numel()} but the "
                            f"adapter's d_in is {d_in}: probes and adapters are for different base models")
        out.append(h.to(torch.float64))
    return out[:-1], out[-1]
