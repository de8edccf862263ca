"""The evaluating half of the API: ``tada eval`` (language and images) and ``tada export-base``."""
from __future__ import annotations

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ..adapters import load_adapter, PROMPT_NAME, read_prompt_format
from ..eval.datasets import load_dataset_by_name
from ..eval.mcq import evaluate as score
from ..eval.records import adapter_sha256, cell_record, text_cell_key, write_predictions
from ..io.atomic import folder_transaction, write_json
from ..errors import TadaError
from ..options import build, EvalOptions, ExportOptions, ImageEvalOptions
from ..models import load_model, load_tokenizer, parse_dtype, resolve_base, smollm2_gguf
from ..stopwatch import step
from ..vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
from ..vision.evaluate import evaluate_images as top1


def evaluate(dataset: str, **options: Any) -> tuple[Any, dict, Path]:
    """Score ``adapter`` on base (default: the embedded SmolLM2) on a multiple-choice ``dataset``
    (``tada eval``). ``options``: the fields of :class:`tada.options.EvalOptions`. Writes the
    per-example predictions to ``out`` (JSONL; default :func:`default_eval_path`:
    ``tada-eval/<dataset>.<scoring>.<adapter folder name or base>.jsonl``) and the cell's record
    (:mod:`tada.eval.records`, as ``tada bench`` caches it) beside it as ``.json``. Returns (result,
    record, predictions path). ``shots``: default 3, or 0 with ``format`` scoring (whose compliance
    the shots would teach). ``limit``: a seeded sample of that many questions, kept in dataset
    order; ``first``: the first that many (lm-evaluation-harness's ``--limit``); not both.
    ``chat_template``: None (default) follows the adapter's ``tada_prompt.json`` (raw without one, and
    for the base); a given value that differs from the recorded format is used, with a one-line
    warning. The record's key holds the choice made, its ``prompt`` field where it came from."""
    o: EvalOptions = build(EvalOptions, options, "tada.evaluate")
    base, gguf_file, revision, adapter, scoring = o.base, o.gguf_file, o.revision, o.adapter, o.scoring
    seed, limit, first, model_dtype = o.seed, o.limit, o.first, o.model_dtype
    shots = (0 if scoring == "format" else 3) if o.shots is None else o.shots
    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    ds = load_dataset_by_name(dataset, split_seed=seed)
    model, tok = load_model(spec, device=o.device, dtype=model_dtype), load_tokenizer(spec)
    adapter_path = str(load_adapter(adapter).path) if adapter else None
    chat_template, prompt = prompt_choice(o.chat_template, read_prompt_format(adapter_path) if adapter_path else None)
    if adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_path)
    started = time.perf_counter()
    res = score(model, tok, ds, scoring=scoring, shots=shots, seed=seed, limit=limit, batch_size=o.batch_size,
                chat_template=chat_template, prefix_cache=o.prefix_cache, first=first)
    path = Path(o.out) if o.out else default_eval_path(dataset, scoring, adapter)
    write_predictions(path, res.predictions)
    key = text_cell_key(base=spec.name, adapter=adapter_path, dataset=dataset, scoring=scoring, shots=shots,
                        seed=seed, limit=limit, chat_template=chat_template, model_dtype=model_dtype, first=first)
    record = cell_record(key, res, seconds=time.perf_counter() - started, adapter=adapter, dataset=dataset,
                         dataset_meta=ds.meta, scoring=scoring, prompt=prompt)
    write_json(path.with_suffix(".json"), record)
    return res, record, path


def prompt_choice(asked: bool | None, recorded: dict | None) -> tuple[bool, dict]:
    """Whether to wrap the prompt in the chat template, and what the record says about it
    (``{"chat_template": …, "source": "asked" | "tada_prompt.json" | "default", "recorded": format or
    None}``): the user's choice when given (a warning when it differs from the adapter's recorded
    format), else the recorded format, else the raw prompt."""
    fmt = recorded.get("format") if recorded else None
    if asked is None:
        chat = fmt == "chat_template"
        return chat, {"chat_template": chat, "source": PROMPT_NAME if fmt else "default", "recorded": fmt}
    if fmt is not None and asked != (fmt == "chat_template"):
        trained = "the chat template" if fmt == "chat_template" else "the raw prompt"
        using = "the chat template" if asked else "the raw prompt"
        warnings.warn(f"this adapter was trained on {trained} (its {PROMPT_NAME}); evaluating with {using} "
                      "as asked", stacklevel=3)
    return asked, {"chat_template": asked, "source": "asked", "recorded": fmt}


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


def evaluate_images(dataset: str, **options: Any) -> tuple[Any, dict, Path]:
    """Top-1 of base (default: the embedded DINOv2-S/14) + ``adapter`` on an image set
    (``tada eval --images``); ``options``: the fields of :class:`tada.options.ImageEvalOptions`.
    Writes the record with its predictions to ``out`` (default
    ``tada-eval/<set>.top1.<adapter folder name or base>.json``). Returns (result, record, path)."""
    o: ImageEvalOptions = build(ImageEvalOptions, options, "tada.evaluate_images")
    base, adapter, head, head_from, train_set, limit, seed, model_dtype, out = (
        o.base, o.adapter, o.head, o.head_from, o.train_set, o.limit, o.seed, o.model_dtype, o.out)
    started = time.perf_counter()
    base_path = resolve_vision_base(base or EMBEDDED_VIT)
    res = top1(base_path, dataset, adapter=adapter, head_from=head_from, head=head, train_source=train_set,
               n=limit or 500, seed=seed, device=o.device, model_dtype=model_dtype)
    safe = Path(dataset).name if Path(dataset).exists() else dataset.replace(":", "_").replace("/", "_")
    path = Path(out or f"tada-eval/{safe}.top1.{_model_label(adapter)}.json")
    head_source = res.meta.get("head_from") if res.head == "modules_to_save" else None
    key = {"base": base_path, "adapter_sha256": adapter_sha256(str(adapter) if adapter else None),
           "head_sha256": adapter_sha256(head_source), "dataset": dataset, "train_set": train_set,
           "recipe": res.head, "limit": limit or 500, "seed": seed, "model_dtype": model_dtype or "float32"}
    record = cell_record(key, res, seconds=time.perf_counter() - started, **res.meta, head=res.head,
                         predictions=res.predictions)
    write_json(path, record, sort_keys=False)
    return res, record, path


def export_base(out: str | os.PathLike, **options: Any) -> Path:
    """Write a base model (default: the embedded SmolLM2 GGUF) as a plain transformers folder —
    ``config.json``, ``model.safetensors``, tokenizer files — that lm-evaluation-harness, vLLM and
    PEFT load with no GGUF support (``tada export-base``); ``options``: the fields of
    :class:`tada.options.ExportOptions`. transformers refuses to save a model it de-quantised from
    GGUF, so the weights are copied into a fresh model built from the config. Written as a folder
    transaction (:func:`tada.io.atomic.folder_transaction`); ``force`` replaces an existing export
    (a folder holding a ``config.json``), nothing else."""
    o: ExportOptions = build(ExportOptions, options, "tada.export_base")
    base, gguf_file, revision, dtype, force = o.base, o.gguf_file, o.revision, o.dtype, o.force
    out = Path(out)
    if out.exists():
        if not force:
            raise TadaError(f"output folder {out} exists; pass `force` to replace it")
        if not (out / "config.json").is_file():
            raise TadaError(f"{out} is not a model folder (no config.json): not replaced")
    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    with step("load_base"):
        model, tok = load_model(spec, device="cpu", dtype=dtype), load_tokenizer(spec)
    config = copy.deepcopy(model.config)
    for key in ("quantization_config", "_pre_quantization_dtype"):  # GGUF's de-quantisation marker:
        if hasattr(config, key):  # lm-eval's `--model hf` and vLLM refuse a plain folder carrying it
            delattr(config, key)
    fresh = type(model)(config)
    fresh.load_state_dict(model.state_dict())
    fresh = fresh.to(parse_dtype(dtype) or torch.float32)
    fresh.config.name_or_path = spec.name
    with folder_transaction(out) as tmp:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out
