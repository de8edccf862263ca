"""The Python API: what the CLI and notebooks call, the same way.

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

import torch

from ._util import write_json_atomic
from .adapters import Adapter, check_output, load_adapter, output_base_model, write_adapter
from .card import CARD_NAME, model_card
from .engine import merge_adapters, MergeResult
from .errors import TadaError
from .eval.datasets import load_dataset_by_name
from .eval.mcq import evaluate as score, select
from .fileio import parse_json_object
from .hub import push
from .methods import get_method
from .methods.base import side_names
from .models import BaseSpec, default_base, load_model, load_tokenizer, parse_dtype, resolve_base, smollm2_gguf
from .options import build, MergeOptions, options_of, ProbeOptions
from .probes import extract_stats, find_modules, ProbeStats, read_probe, stats_for_probe
from .records import adapter_sha256, cell_record, text_cell_key, write_predictions
from .report import jsonable, REPORT_NAME, TIMINGS_NAME
from .stopwatch import step
from .vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
from .vision.evaluate import evaluate_images as top1


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


def merge(task: AdapterSource, domain: AdapterSource | list[str] | list[AdapterSource], *,
          method: str = "tada", params: dict | Any | None = None, **options: Any) -> MergeResult:
    """Merge a task and a domain LoRA adapter (or a list of K domain adapters, SPEC §6b) into one
    PEFT LoRA adapter.

    ``params``: the method's parameters (a dict, or its parameter dataclass; ``tada methods``).
    With K domain adapters, ``domain_probe``/``domain_stats``/``domain_revision`` are lists in
    the same order, and ``weights`` (where a method takes them) has K + 1 numbers.
    ``options``: the fields of :class:`tada.options.MergeOptions` (base, probes, out, rank…).
    Probes for ``method="tada"``: either probe files (``domain_probe``/``general_probe``, with
    ``base``) or statistics files written by ``tada probe`` (``domain_stats``/``general_stats``).
    ``out``: write the adapter folder (atomically; ``force`` replaces an existing one).
    Returns the tensors, config, report and timings.
    """
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
        needs_base = any(p is not None for p in (*_listed(o.domain_probe), o.general_probe))
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
        extra = {REPORT_NAME: result.report, TIMINGS_NAME: jsonable(result.timings), **_sidecars(task_a),
                 CARD_NAME: model_card(result.report, result.config)}
        write_adapter(o.out, result.tensors, result.config, extra, force=o.force)
        result.timings["write"] = time.perf_counter() - t
        result.out = str(o.out)
        if o.push_to_hub:
            push(o.out, o.push_to_hub, private=o.private, revision=o.hub_revision)
    return result


# The signature help() and IDEs show: the merge's own arguments, then every MergeOptions field.
merge.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    *list(inspect.signature(merge).parameters.values())[:4],
    *(inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=opt.default)
      for opt in options_of(MergeOptions))], return_annotation=MergeResult)


def _listed(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


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
    model, tok = load_model(spec, device=o.device, dtype=o.model_dtype), load_tokenizer(spec)
    if modules is None and adapter is not None:
        modules = load_adapter(adapter).module_names
    if modules is None:
        modules = linear_modules(model, o.target_modules)
    find_modules(model, modules)
    probe_set = read_probe(probe, o.n, o.seed)
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


def linear_modules(model: torch.nn.Module, target_modules: str) -> list[str]:
    output_embeddings = getattr(model, "get_output_embeddings", None)
    head = output_embeddings() if callable(output_embeddings) else None
    wanted = None if target_modules == "all-linear" else {t.strip() for t in target_modules.split(",")}
    names = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m is not head
             and (wanted is None or n.rsplit(".", 1)[-1] in wanted)]
    if not names:
        raise TadaError(f"no linear modules match `target_modules` {target_modules}")
    return names


def evaluate(dataset: str, *, base: str | None = None, gguf_file: str | None = None, revision: str | None = None,
             adapter: str | os.PathLike | None = None, scoring: str = "letter", shots: int | None = None,
             seed: int = 0, limit: int | None = None, batch_size: int = 8, chat_template: bool = False,
             prefix_cache: bool = True, device: str = "cpu", model_dtype: str | None = None,
             out: str | os.PathLike | None = None, first: int | None = None) -> tuple[Any, dict, Path]:
    """Score ``adapter`` on base (default: the embedded SmolLM2) on a multiple-choice ``dataset``
    (``tada eval``). Writes the per-example predictions to ``out`` (JSONL; default
    :func:`default_eval_path`: ``tada-eval/<dataset>.<scoring>.<adapter folder name or base>.jsonl``)
    and the cell's record (:mod:`tada.records`, as ``tada bench`` caches it) beside it as ``.json``.
    Returns (result, record, predictions path). ``shots``: default 3, or 0 with ``format`` scoring
    (whose compliance the shots would teach). ``limit``: a seeded sample of that many questions, kept
    in dataset order; ``first``: the first that many (lm-evaluation-harness's ``--limit``); not both."""

    shots = (0 if scoring == "format" else 3) if shots is None else shots
    select([], limit, seed, first)  # `limit` and `first` checked before any model is loaded
    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    ds = load_dataset_by_name(dataset, split_seed=seed)
    model, tok = load_model(spec, device=device, dtype=model_dtype), load_tokenizer(spec)
    adapter_path = str(load_adapter(adapter).path) if adapter else None
    if adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_path)
    started = time.perf_counter()
    res = score(model, tok, ds, scoring=scoring, shots=shots, seed=seed, limit=limit, batch_size=batch_size,
                chat_template=chat_template, prefix_cache=prefix_cache, first=first)
    path = Path(out) if out else default_eval_path(dataset, scoring, adapter)
    write_predictions(path, res.predictions)
    key = text_cell_key(base=spec.name, adapter=adapter_path, dataset=dataset, scoring=scoring, shots=shots,
                        seed=seed, limit=limit, chat_template=chat_template, model_dtype=model_dtype, first=first)
    record = cell_record(key, res, seconds=time.perf_counter() - started, adapter=adapter, dataset=dataset,
                         dataset_meta=ds.meta, scoring=scoring)
    write_json_atomic(path.with_suffix(".json"), record)
    return res, record, path


def default_eval_path(dataset: str, scoring: str, adapter: str | os.PathLike | None) -> Path:
    """``tada eval``'s default predictions file: ``tada-eval/<dataset>.<scoring>.<model>.jsonl``.
    ``<dataset>``: a .jsonl file's stem, else the registry name (``:`` → ``_``); ``<model>``: the
    adapter folder's own name (a hub id: ``owner_name``), or ``base`` without an adapter; so the
    base and each adapter evaluated from one folder get their own files."""
    name = Path(dataset).stem if dataset.endswith(".jsonl") else dataset.replace(":", "_")
    return Path("tada-eval") / f"{name}.{scoring}.{_model_label(adapter)}.jsonl"


def _model_label(adapter: str | os.PathLike | None) -> str:
    """``base`` without an adapter, else the adapter folder's own name (a hub id: ``owner_name``)."""
    if adapter is None:
        return "base"
    p = Path(adapter)
    label = p.resolve().name if p.exists() else str(adapter).replace("/", "_").replace(":", "_")
    return label or "adapter"


def evaluate_images(dataset: str, *, base: str | None = None, adapter: str | os.PathLike | None = None,
                    head: str = "auto", head_from: str | None = None, train_set: str | None = None,
                    limit: int | None = None, seed: int = 42, device: str = "cpu", model_dtype: str | None = None,
                    out: str | os.PathLike | None = None) -> tuple[Any, dict, Path]:
    """Top-1 of base (default: the embedded DINOv2-S/14) + ``adapter`` on an image set
    (``tada eval --images``); writes the record with its predictions to ``out`` (default
    ``tada-eval/<set>.top1.<adapter folder name or base>.json``). Returns (result, record, path)."""

    started = time.perf_counter()
    base_path = resolve_vision_base(base or EMBEDDED_VIT)
    res = top1(base_path, dataset, adapter=adapter, head_from=head_from, head=head, train_source=train_set,
               n=limit or 500, seed=seed, device=device, model_dtype=model_dtype)
    safe = Path(dataset).name if Path(dataset).exists() else dataset.replace(":", "_").replace("/", "_")
    path = Path(out or f"tada-eval/{safe}.top1.{_model_label(adapter)}.json")
    head_source = res.meta.get("head_from") if res.head == "modules_to_save" else None
    key = {"base": base_path, "adapter_sha256": adapter_sha256(str(adapter) if adapter else None),
           "head_sha256": adapter_sha256(head_source), "dataset": dataset, "train_set": train_set,
           "recipe": res.head, "limit": limit or 500, "seed": seed, "model_dtype": model_dtype or "float32"}
    record = cell_record(key, res, seconds=time.perf_counter() - started, **res.meta, head=res.head,
                         predictions=res.predictions)
    write_json_atomic(path, record, sort_keys=False)
    return res, record, path


def export_base(out: str | os.PathLike, *, base: str | None = None, gguf_file: str | None = None,
                revision: str | None = None, dtype: str | None = None, force: bool = False) -> Path:
    """Write a base model (default: the embedded SmolLM2 GGUF) as a plain transformers folder —
    ``config.json``, ``model.safetensors``, tokenizer files — that lm-evaluation-harness, vLLM and
    PEFT load with no GGUF support (``tada export-base``). transformers refuses to save a model it
    de-quantised from GGUF, so the weights are copied into a fresh model built from the config.
    Written into a temporary folder beside ``out`` and renamed; ``force`` replaces an existing
    export (a folder holding a ``config.json``), nothing else."""
    import shutil
    import tempfile

    out = Path(out)
    if out.exists():
        if not force:
            raise TadaError(f"output folder {out} exists; pass `force` to replace it")
        if not (out / "config.json").is_file():
            raise TadaError(f"{out} is not a model folder (no config.json): not replaced")
    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    with step("load_base"):
        model, tok = load_model(spec, device="cpu", dtype=dtype), load_tokenizer(spec)
    fresh = type(model)(model.config)
    fresh.load_state_dict(model.state_dict())
    fresh = fresh.to(parse_dtype(dtype) or torch.float32)
    fresh.config.name_or_path = spec.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
