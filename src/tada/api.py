"""The Python API: what the CLI and notebooks call, the same way.

>>> result = tada.merge("task_adapter/", "domain_adapter/", method="tada", base="base_model/",
...                     domain_probe="domain.txt", general_probe="general.txt", out="merged/")
>>> result.report["summary"]
"""
from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .adapters import Adapter, load_adapter, write_adapter
from .engine import MergeResult, merge_adapters
from .errors import TadaError
from .fileio import parse_json_object
from .methods import get_method
from .models import BaseSpec, load_model, load_tokenizer, resolve_base
from .probes import ProbeStats, extract_stats, find_modules, read_probe, stats_for_probe
from .report import REPORT_NAME, TIMINGS_NAME, jsonable
from .stopwatch import step


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


def merge(task: str | os.PathLike | Adapter, domain: str | os.PathLike | Adapter, *,
          method: str = "tada", params: dict | Any | None = None,
          base: str | None = None, gguf_file: str | None = None, revision: str | None = None,
          task_revision: str | None = None, domain_revision: str | None = None,
          domain_probe: str | os.PathLike | None = None, general_probe: str | os.PathLike | None = None,
          domain_stats: str | os.PathLike | ProbeStats | None = None,
          general_stats: str | os.PathLike | ProbeStats | None = None,
          probe_n: int = 32, probe_seed: int = 42, max_length: int = 256, probe_site: str = "module-input",
          batch_size: int = 8, device: str = "cpu", model_dtype: str | None = None,
          rank: int | None = None, dtype: str | None = None, allow_partial: bool = False,
          allow_pickle: bool = False, out: str | os.PathLike | None = None, force: bool = False,
          use_cache: bool = True, progress: bool = True) -> MergeResult:
    """Merge a task and a domain LoRA adapter into one PEFT LoRA adapter.

    Probes for ``method="tada"``: either probe files (``domain_probe``/``general_probe``, with
    ``base``) or statistics files written by ``tada probe`` (``domain_stats``/``general_stats``).
    ``out``: write the adapter folder (atomically; ``force`` replaces an existing one).
    Returns the tensors, config, report and timings.
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    task_a = _open(task, task_revision, allow_pickle)
    domain_a = _open(domain, domain_revision, allow_pickle)
    timings["load_adapters"] = time.perf_counter() - t
    if out is not None and Path(out).exists() and not force:
        raise TadaError(f"output folder {out} exists; pass --force to replace it")

    spec = get_method(method)
    stats_d = stats_g = None
    probe_info: dict = {}
    if spec.needs_probes:
        t = time.perf_counter()
        modules = sorted(set(task_a.module_names) | set(domain_a.module_names))
        base_spec = resolve_base(base, gguf_file, revision) if base else None
        loader = _base_loader(base_spec, device, model_dtype) if base_spec else None
        stats_d, probe_info["domain"] = _probe_stats("domain", domain_probe, domain_stats, modules, base_spec,
                                                     loader, probe_n, probe_seed, max_length, probe_site,
                                                     batch_size, use_cache, progress)
        stats_g, probe_info["general"] = _probe_stats("general", general_probe, general_stats, modules, base_spec,
                                                      loader, probe_n, probe_seed, max_length, probe_site,
                                                      batch_size, use_cache, progress)
        timings["probes"] = time.perf_counter() - t
    result = merge_adapters(task_a, domain_a, method, params, stats_domain=stats_d, stats_general=stats_g,
                            rank=rank, dtype=dtype, allow_partial=allow_partial, progress=progress,
                            probe_info=probe_info)
    result.timings = {**timings, **result.timings}
    if out is not None:
        t = time.perf_counter()
        extra = {REPORT_NAME: result.report, TIMINGS_NAME: jsonable(result.timings), **_sidecars(task_a)}
        write_adapter(out, result.tensors, result.config, extra, force=force)
        result.timings["write"] = time.perf_counter() - t
        result.out = str(out)
    return result


#: JSON files beside a task adapter that describe its ``modules_to_save`` and travel with them
#: into the merged adapter (``labels.json``: the class names of an image-classification head).
SIDECARS = ("labels.json",)


def _sidecars(task: Adapter) -> dict[str, dict]:
    """The task adapter's sidecar files, parsed (the merged adapter carries its head)."""
    out = {}
    for name in SIDECARS:
        path = Path(task.path) / name
        if path.is_file():
            out[name] = parse_json_object(path.read_text(encoding="utf-8"), str(path))
    return out


def _probe_stats(which: str, probe, stats, modules: list[str], base_spec: BaseSpec | None, loader,
                 n: int, seed: int, max_length: int, site: str, batch_size: int, use_cache: bool,
                 progress: bool) -> tuple[ProbeStats, dict]:
    """Statistics for one probe: from a stats file, or from the probe file (cache, else the model)."""
    if stats is not None and probe is not None:
        raise TadaError(f"give either --{which}-probe or --{which}-stats, not both")
    if stats is not None:
        loaded = stats if isinstance(stats, ProbeStats) else ProbeStats.load(stats)
        return loaded, {"stats_file": None if isinstance(stats, ProbeStats) else str(stats), **loaded.meta}
    if probe is None:
        raise TadaError(f"method tada needs a {which} probe: --{which}-probe FILE or --{which}-stats FILE")
    if base_spec is None:
        raise TadaError(f"--{which}-probe needs --base (the model the probe runs through)")
    probe_set = read_probe(probe, n, seed)
    computed, cached = stats_for_probe(probe_set, modules, base_name=base_spec.name, load_model=loader, n=n,
                                       max_length=max_length, site=site, batch_size=batch_size,
                                       use_cache=use_cache, progress=progress)
    info = {"file": str(probe), "sha256": probe_set.sha256, "n": len(probe_set.items),
            "inputs_in_file": probe_set.n_in_file, "seed": seed, "max_length": max_length, "site": site,
            "base": base_spec.name, "tokens": computed.meta.get("tokens")}
    return computed, info


def extract_probes(base: str, probe: str | os.PathLike, *, gguf_file: str | None = None,
                   revision: str | None = None, modules: list[str] | None = None,
                   adapter: str | os.PathLike | None = None, target_modules: str = "all-linear",
                   n: int = 32, seed: int = 42, max_length: int = 256, site: str = "module-input",
                   batch_size: int = 8, device: str = "cpu", model_dtype: str | None = None,
                   max_tokens: int | None = None, out: str | os.PathLike | None = None,
                   progress: bool = True) -> ProbeStats:
    """Probe statistics on the base model (``tada probe``), optionally saved to a safetensors file.

    Modules: ``modules`` (exact names), else those of ``adapter``, else every module whose leaf
    name is in ``target_modules`` (comma-separated), where ``all-linear`` means every
    ``nn.Linear`` except the output head.
    """
    spec = resolve_base(base, gguf_file, revision)
    model, tok = load_model(spec, device=device, dtype=model_dtype), load_tokenizer(spec)
    if modules is None and adapter is not None:
        modules = load_adapter(adapter).module_names
    if modules is None:
        modules = linear_modules(model, target_modules)
    find_modules(model, modules)
    probe_set = read_probe(probe, n, seed)
    stats = extract_stats(model, tok, probe_set.items, modules, batch_size=batch_size,
                          max_length=max_length, site=site, max_tokens=max_tokens, progress=progress)
    stats.meta.update({"base": spec.name, "probe_file": str(probe), "probe_sha256": probe_set.sha256,
                       "n": n, "seed": seed})
    if out is not None:
        stats.save(out)
    return stats


def linear_modules(model: torch.nn.Module, target_modules: str) -> list[str]:
    output_embeddings = getattr(model, "get_output_embeddings", None)
    head = output_embeddings() if callable(output_embeddings) else None
    wanted = None if target_modules == "all-linear" else {t.strip() for t in target_modules.split(",")}
    names = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m is not head
             and (wanted is None or n.rsplit(".", 1)[-1] in wanted)]
    if not names:
        raise TadaError(f"no linear modules match --target-modules {target_modules}")
    return names
