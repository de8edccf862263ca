"""The merging half of the API: ``tada merge`` and ``tada probe``, as the CLI and notebooks call them.

>>> result = tada.merge("task_adapter/", "domain_adapter/", method="tada", base="base_model/",
...                     domain_probe="domain.txt", general_probe="general.txt", out="merged/")
>>> result.report["summary"]
"""
from __future__ import annotations

import inspect
import os
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any


from ..adapters import Adapter, check_output, load_adapter, output_base_model, PROMPT_NAME, write_adapter
from .._util import as_list
from ..config import load_merge_config
from ..report.card import CARD_NAME, model_card
from ..engine import merge_adapters, MergeResult
from ..errors import TadaError
from ..io.files import parse_json_object
from ..io.hub import push
from ..methods import get_method
from ..methods.base import side_names
from ..models import BaseSpec, default_base, load_model, load_tokenizer, resolve_base
from ..options import build, MergeOptions, options_of, ProbeOptions
from ..probes import extract_stats, find_modules, linear_modules, ProbeStats, read_probe, stats_for_probe
from ..report import jsonable, REPORT_NAME, TIMINGS_NAME
from ..stopwatch import step


def _open(adapter: str | os.PathLike | Adapter, revision: str | None, allow_pickle: bool) -> Adapter:
    return adapter if isinstance(adapter, Adapter) else load_adapter(adapter, revision=revision,
                                                                      allow_pickle=allow_pickle)


def _base_loader(spec: BaseSpec, device: str, dtype: str | None):
    """A memoised ``() -> (model, tokenizer)``: the model is loaded at most once, and only if needed."""

    @lru_cache(maxsize=1)
    def load():
        with step("load_base"):
            return load_model(spec, device=device, dtype=dtype), load_tokenizer(spec)

    return load


AdapterSource = str | os.PathLike | Adapter


def merge(task: AdapterSource | None = None, domain: AdapterSource | list[str] | list[AdapterSource] | None = None, *,
          method: str | None = None, params: dict | Any | None = None, config: str | os.PathLike | None = None,
          **options: Any) -> MergeResult:
    """Merge a task and a domain LoRA adapter (or a list of K domain adapters, SPEC §6b) into one
    PEFT LoRA adapter.

    ``config``: a merge YAML (:mod:`tada.config`: the options' keys, ``task``, ``domain``,
    ``method``, ``parameters``, ``domains:``); arguments given here win over its keys, and
    ``params`` over its ``parameters`` key by key. ``method`` defaults to ``tada``.

    ``params``: the method's parameters (a dict, or its parameter dataclass; ``tada methods``).
    With K domain adapters, ``domain_probe``/``domain_stats``/``domain_revision`` are lists in
    the same order, and ``weights`` (where a method takes them) has K + 1 numbers.
    ``options``: the fields of :class:`tada.options.MergeOptions` (base, probes, out, rank…).
    Probes for ``method="tada"``: either probe files (``domain_probe``/``general_probe``, with
    ``base``) or statistics files written by ``tada probe`` (``domain_stats``/``general_stats``).
    ``out``: write the adapter folder (atomically; ``force`` replaces an existing one).
    Returns the tensors, config, report and timings.
    """
    if config is not None:
        cfg = load_merge_config(config)
        task, domain = (cfg.pop("task", None) if task is None else task), (cfg.pop("domain", None) if domain is None
                                                                          else domain)
        method = cfg.pop("method", None) if method is None else method
        yaml_params = cfg.pop("parameters", None) or {}
        params = yaml_params if params is None else {**yaml_params, **params} if isinstance(params, dict) else params
        options = {**{k: v for k, v in cfg.items() if k not in ("task", "domain", "method")}, **options}
    if task is None or not domain:
        raise TadaError("`task` and `domain` are required (as arguments or in `config`)")
    method = method or "tada"
    o: MergeOptions = build(MergeOptions, options, "tada.merge")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    task_a = _open(task, o.task_revision, o.allow_pickle)
    domain_list = list(domain) if isinstance(domain, (list, tuple)) else [domain]
    k = len(domain_list)
    revisions = _per_domain(o.domain_revision, k, "domain_revision")
    domain_as = [_open(d, rev, o.allow_pickle) for d, rev in zip(domain_list, revisions)]
    timings["load_adapters"] = time.perf_counter() - t
    if o.out is not None:
        check_output(o.out, o.force)
    elif o.push_to_hub:
        raise TadaError("`push_to_hub` needs `out` (the folder that is uploaded)")
    base_model, base_warning = output_base_model(task_a.base_model, o.base)

    spec = get_method(method)
    stats_d = stats_g = None
    probe_info: dict = {}
    if spec.needs_probes:
        t = time.perf_counter()
        modules = sorted(set(task_a.module_names).union(*(d.module_names for d in domain_as)))
        needs_base = any(p is not None for p in (*as_list(o.domain_probe), o.general_probe))
        base_spec = (resolve_base(o.base, o.gguf_file, o.revision) if o.base else
                     default_base([a.base_model for a in (task_a, *domain_as)]) if needs_base else None)
        loader = _base_loader(base_spec, o.device, o.model_dtype) if base_spec else None
        probes, stats = _per_domain(o.domain_probe, k, "domain_probe"), _per_domain(o.domain_stats, k, "domain_stats")
        found = [_probe_stats("domain", p, st, modules, base_spec, loader, o) for p, st in zip(probes, stats)]
        stats_d = [f[0] for f in found] if k > 1 else found[0][0]
        if k == 1:
            probe_info["domain"] = found[0][1]
        else:
            probe_info["domains"] = {side: f[1] for side, f in zip(side_names(k)[1:], found)}
        stats_g, probe_info["general"] = _probe_stats("general", o.general_probe, o.general_stats, modules,
                                                      base_spec, loader, o)
        timings["probes"] = time.perf_counter() - t
    result = merge_adapters(task_a, domain_as if k > 1 else domain_as[0], method, params,
                            stats_domain=stats_d, stats_general=stats_g,
                            rank=o.rank, max_rank=o.max_rank, dtype=o.dtype, allow_partial=o.allow_partial,
                            progress=o.progress,
                            probe_info=probe_info, base_model=base_model)
    if base_warning:
        warnings.warn(base_warning, stacklevel=2)
        result.report["warnings"].append(base_warning)
    result.timings = {**timings, **result.timings}
    if o.out is not None:
        t = time.perf_counter()
        sidecars = _sidecars(task_a)
        extra = {REPORT_NAME: result.report, TIMINGS_NAME: jsonable(result.timings), **sidecars,
                 CARD_NAME: model_card(result.report, result.config, prompt=sidecars.get(PROMPT_NAME))}
        write_adapter(o.out, result.tensors, result.config, extra, force=o.force)
        result.timings["write"] = time.perf_counter() - t
        result.out = str(o.out)
        if o.push_to_hub:
            push(o.out, o.push_to_hub, private=o.private, revision=o.hub_revision)
    return result


# The signature help() and IDEs show: the merge's own arguments, then every MergeOptions field.
merge.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    *list(inspect.signature(merge).parameters.values())[:5],
    *(inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=opt.default)
      for opt in options_of(MergeOptions))], return_annotation=MergeResult)


def _per_domain(value: Any, k: int, name: str) -> list:
    """One value per domain adapter: a list of k, or one value (or None) for every domain when
    k = 1 (a single value with several domains is refused for probes and statistics)."""
    if isinstance(value, (list, tuple)):
        if len(value) != k:
            raise TadaError(f"{k} domain adapter(s) but {len(value)} `{name}` values: give one per domain "
                            "adapter, in the same order")
        return list(value)
    if value is not None and k > 1 and name != "domain_revision":
        raise TadaError(f"{k} domain adapters but one `{name}`: give one per domain adapter, in the same order")
    return [value] * k


#: JSON files beside a task adapter that describe its ``modules_to_save`` and travel with them
#: into the merged adapter (``labels.json``: the class names of an image-classification head).
SIDECARS = ("labels.json", PROMPT_NAME)


def _sidecars(task: Adapter) -> dict[str, dict]:
    """The task adapter's sidecar files, parsed: the merged adapter carries its head's labels and the
    prompt format it was trained on (the merge answers the task's prompt)."""
    out = {}
    for name in SIDECARS:
        path = Path(task.path) / name
        if path.is_file():
            out[name] = parse_json_object(path.read_text(encoding="utf-8"), str(path))
    return out


def _probe_stats(which: str, probe, stats, modules: list[str], base_spec: BaseSpec | None, loader,
                 o: MergeOptions) -> tuple[ProbeStats, dict]:
    """Statistics for one probe: from a stats file, or from the probe file (cache, else the model)."""
    if stats is not None and probe is not None:
        raise TadaError(f"give either `{which}_probe` or `{which}_stats`, not both")
    if stats is not None:
        loaded = stats if isinstance(stats, ProbeStats) else ProbeStats.load(stats)
        return loaded, {"stats_file": None if isinstance(stats, ProbeStats) else str(stats), **loaded.meta}
    if probe is None:
        raise TadaError(f"method tada needs a {which} probe: `{which}_probe` FILE or `{which}_stats` FILE")
    if base_spec is None:
        raise TadaError(f"`{which}_probe` needs `base` (the model the probe runs through)")
    probe_set = read_probe(probe, o.probe_n, o.probe_seed)
    computed, cached = stats_for_probe(probe_set, modules, base_name=base_spec.name, load_model=loader, n=o.probe_n,
                                       max_length=o.max_length, site=o.probe_site, batch_size=o.batch_size,
                                       use_cache=o.use_cache, progress=o.progress)
    info = {"file": str(probe), "sha256": probe_set.sha256, "n": len(probe_set.items),
            "inputs_in_file": probe_set.n_in_file, "seed": o.probe_seed, "max_length": o.max_length,
            "site": o.probe_site,
            "base": base_spec.name, "tokens": computed.meta.get("tokens")}
    return computed, info


def extract_probes(base: str | None, probe: str | os.PathLike, *, modules: list[str] | None = None,
                   out: str | os.PathLike | None = None, **options: Any) -> ProbeStats:
    """Probe statistics on the base model (``tada probe``), optionally saved to a safetensors file.
    ``base`` None: the embedded SmolLM2 (a note unless ``adapter`` names it). ``options``: the
    fields of :class:`tada.options.ProbeOptions`.

    Modules: ``modules`` (exact names), else those of ``adapter``, else every module whose leaf
    name is in ``target_modules`` (comma-separated), where ``all-linear`` means every
    ``nn.Linear`` except the output head.
    """
    o: ProbeOptions = build(ProbeOptions, options, "tada.extract_probes")
    adapter, gguf_file, revision = o.adapter, o.gguf_file, o.revision
    recorded = [load_adapter(adapter).base_model] if adapter is not None else []
    spec = resolve_base(base, gguf_file, revision) if base else default_base(recorded)
    probe_set = read_probe(probe, o.n, o.seed)  # a missing or empty file: before the model loads
    model, tok = load_model(spec, device=o.device, dtype=o.model_dtype), load_tokenizer(spec)
    if modules is None and adapter is not None:
        modules = load_adapter(adapter).module_names
    if modules is None:
        modules = linear_modules(model, o.target_modules)
    find_modules(model, modules)
    stats = extract_stats(model, tok, probe_set.items, modules, batch_size=o.batch_size,
                          max_length=o.max_length, site=o.site, max_tokens=o.max_tokens, progress=o.progress)
    stats.meta.update({"base": spec.name, "probe_file": str(probe), "probe_sha256": probe_set.sha256,
                       "n": o.n, "seed": o.seed})
    if out is not None:
        stats.save(out)
    return stats


extract_probes.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    *list(inspect.signature(extract_probes).parameters.values())[:4],
    *(inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=opt.default)
      for opt in options_of(ProbeOptions))], return_annotation=ProbeStats)
