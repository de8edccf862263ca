"""The ``README.md`` model card of a merged adapter, built from its report (pure: no I/O, no torch).

YAML front matter (``base_model`` when it is a hub id, ``library_name: peft``, ``tags``), then the
method and every parameter, the inputs (source, revision, sha256 of the weights), the probes and
their hashes, TaDA's α summary, how to load the adapter with PEFT, how to prompt it (from the task
adapter's ``tada_prompt.json``, when it has one), and optionally a table of
``tada eval`` records (:mod:`tada.eval.records`). Same report ⇒ same bytes.
"""
from __future__ import annotations

import json
import os
from typing import Any

from pathlib import Path

from ..io.atomic import write_text
from ..io.files import read_json_object
from ..errors import TadaError
from ..io.hub import is_hub_id
from . import REPORT_NAME

CARD_NAME = "README.md"
TAGS = ("tada", "lora", "merge")

_AUTO_CLASS = {"CAUSAL_LM": "AutoModelForCausalLM", "SEQ_CLS": "AutoModelForSequenceClassification",
               "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM", "TOKEN_CLS": "AutoModelForTokenClassification",
               "QUESTION_ANS": "AutoModelForQuestionAnswering", "FEATURE_EXTRACTION": "AutoModel"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell(value: Any) -> str:
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def _front_matter(base: Any) -> str:
    import yaml

    meta: dict[str, Any] = {}
    if is_hub_id(base) and not os.path.isabs(str(base)):
        meta["base_model"] = base
    meta["library_name"] = "peft"
    meta["tags"] = list(TAGS)
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, default_flow_style=False) + "---\n"


def _inputs(report: dict) -> list[tuple[str, dict]]:
    """(role, summary) of every input adapter; a list under one role gives role 1, role 2…"""
    out = []
    for role, value in (report.get("inputs") or {}).items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items, 1):
            if isinstance(item, dict):
                out.append((f"{role} {i}" if isinstance(value, list) else role, item))
    return out


def model_card(report: dict, config: dict, evals: list[dict] | None = None, prompt: dict | None = None,
               tuning: dict | None = None) -> str:
    """The card's Markdown text for a merge ``report`` (``tada_report.json``) and the written
    ``config`` (``adapter_config.json``); ``evals``: ``tada eval`` records for a results table;
    ``prompt``: the task adapter's ``tada_prompt.json`` for a "How to prompt" section; ``tuning``:
    how ``tada tune`` picked these settings (objective, budget, validation sets, score, sampler,
    pruner)."""
    method = report.get("method", "?")
    base = config.get("base_model_name_or_path")
    lines = [_front_matter(base), f"# LoRA adapter merged with tada ({method})", ""]
    inputs = _inputs(report)
    lines += [f"A PEFT LoRA adapter (rank {config.get('r')}, scaling 1) merged by tada with the `{method}` "
              f"method from {len(inputs)} adapters. Base model: `{base}`.", ""]

    lines += ["## Method and parameters", "", "| parameter | value |", "|---|---|", f"| method | {method} |"]
    for key, value in sorted((report.get("params") or {}).items()):
        lines.append(f"| {_cell(key)} | {_cell(value)} |")
    for key in ("rank", "dtype", "allow_partial"):
        if key in report:
            lines.append(f"| {key} | {_cell(report[key])} |")
    lines.append("")
    if tuning:
        lines += tuning_section(tuning)

    lines += ["## Inputs", "", "| role | adapter | revision | base model | r | modules | weights sha256 |",
              "|---|---|---|---|---|---|---|"]
    for role, s in inputs:
        lines.append(f"| {role} | `{_cell(s.get('source'))}` | {_cell(s.get('revision') or '-')} | "
                     f"{_cell(s.get('base_model'))} | {_cell(s.get('r'))} | {_cell(s.get('modules'))} | "
                     f"`{_cell(s.get('weights_sha256'))}` |")
    lines.append("")

    probes = report.get("probes") or {}
    if probes:
        lines += ["## Probes", "", "| probe | file | sha256 | n | seed |", "|---|---|---|---|---|"]
        for which, p in sorted(probes.items()):
            file = p.get("file") or p.get("probe_file") or "-"
            stats = f" (statistics {p['stats_file']})" if p.get("stats_file") else \
                (" (statistics given in memory)" if "stats_file" in p else "")
            sha = p.get("sha256") or p.get("probe_sha256") or "-"
            lines.append(f"| {which} | `{_cell(file)}`{_cell(stats)} | `{_cell(sha)}` | {_cell(p.get('n', '-'))} | "
                         f"{_cell(p.get('seed', '-'))} |")
        lines.append("")

    summary = report.get("summary") or {}
    if "alpha_mean" in summary:
        calib = report.get("calibration") or {}
        delta = calib.get("delta", (report.get("params") or {}).get("delta"))
        source = f" ({calib['delta_source']})" if calib.get("delta_source") else ""
        lines += ["## Task weight α (TaDA)", "",
                  f"- α over {summary.get('modules')} modules: {summary['alpha_mean']:.3f} ± "
                  f"{summary['alpha_std']:.3f} (mean ± std)",
                  f"- task-dominant modules (α ≥ 0.5): {summary['task_dominant_fraction']:.1%}",
                  f"- overlap threshold δ: {_fmt(delta)}{source}", ""]
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["## Warnings at merge time", "", *(f"- {w}" for w in warnings), ""]

    auto = _AUTO_CLASS.get(str(config.get("task_type")), "AutoModel")
    lines += ["## Use with PEFT", "", "```python",
              f"from transformers import {auto}",
              "from peft import PeftModel", "",
              f"base = {auto}.from_pretrained({json.dumps(base)})",
              'model = PeftModel.from_pretrained(base, "PATH_OR_REPO_OF_THIS_ADAPTER")',
              "model = model.merge_and_unload()  # optional: fold the LoRA delta into the weights",
              "```", ""]
    if prompt:
        lines += how_to_prompt(prompt, base, auto)
    if evals:
        lines += evaluation_table(evals)
    versions = report.get("versions") or {}
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def how_to_prompt(prompt: dict, base: Any, auto: str = "AutoModelForCausalLM") -> list[str]:
    """Markdown lines of the "How to prompt" section from a ``tada_prompt.json`` record: the prompt
    format the task adapter was trained on and a PEFT snippet that builds its prompt that way (a
    raw string, or ``tokenizer.apply_chat_template``). An unknown format gives no section."""
    fmt = prompt.get("format")
    if fmt not in ("raw", "chat_template"):
        return []
    example = prompt.get("example_prompt", prompt.get("example", ""))
    lines = ["## How to prompt", ""]
    if fmt == "raw":
        how = ("on the **raw prompt**, without a chat template: the model reads the prompt text as "
               "`tokenizer(prompt)` tokenizes it, and the answer follows it directly "
               f"(`{_cell(prompt.get('template'))}`). Wrapped in the chat template, the prompt is not what it "
               "learned to answer")
        build = ["inputs = tokenizer(prompt, return_tensors=\"pt\")  # the raw prompt, as trained"]
    else:
        how = ("through the base tokenizer's **chat template**: the prompt is the user turn, rendered with the "
               "generation prompt, and the answer the assistant turn")
        build = ["messages = [{\"role\": \"user\", \"content\": prompt}]",
                 "text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)",
                 "inputs = tokenizer(text, return_tensors=\"pt\", add_special_tokens=False)"]
    lines += [f"The task adapter was trained {how}. `tada_prompt.json` in this folder records it, and `tada eval` "
              "follows it unless told otherwise. One training prompt as the model saw it:", "", "```text",
              str(prompt.get("example", "")), "```", "", "```python",
              f"from transformers import {auto}, AutoTokenizer", "from peft import PeftModel", "",
              f"base = {auto}.from_pretrained({json.dumps(base)})",
              f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(base)})",
              'model = PeftModel.from_pretrained(base, "PATH_OR_REPO_OF_THIS_ADAPTER")', "",
              f"prompt = {json.dumps(example)}", *build,
              "output = model.generate(**inputs, max_new_tokens=32, do_sample=False)",
              'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))',
              "```", ""]
    return lines


def tuning_section(tuning: dict) -> list[str]:
    """Markdown lines naming how ``tada tune`` chose this merge's settings."""
    ci = tuning.get("ci") or [None, None]
    ci_text = f" (95% CI [{ci[0]:.3f}, {ci[1]:.3f}])" if all(isinstance(c, (int, float)) for c in ci[:2]) else ""
    score = tuning.get("score")
    lines = ["## Tuning", "",
             f"Settings picked by `tada tune` on validation data: the best of {_cell(tuning.get('trials_used'))} "
             f"trials ({_cell(tuning.get('pruned', 0))} stopped early) of a budget of {_cell(tuning.get('budget'))} "
             "per method, every method given the same budget.", "",
             f"- objective: {_cell(tuning.get('objective'))}",
             f"- validation sets: {', '.join(f'`{v}`' for v in tuning.get('validation') or [])}"
             f" ({_cell(tuning.get('scoring'))} scoring, {_cell(tuning.get('limit') or 'all')} questions each)",
             f"- score on validation: {f'{score:.3f}' if isinstance(score, (int, float)) else '-'}{ci_text}",
             f"- search: {_cell(tuning.get('space'))}; sampler {_cell(tuning.get('sampler'))}; "
             f"pruner {_cell(tuning.get('pruner'))}"]
    ranking = tuning.get("ranking") or []
    if ranking:
        lines.append("- every method's best on validation: " + ", ".join(
            f"{r['method']} {r['score']:.3f}" for r in ranking if isinstance(r.get("score"), (int, float))))
    return [*lines, ""]


def evaluation_table(records: list[dict]) -> list[str]:
    """Markdown lines of an evaluation table from ``tada eval`` records (one row per record; a
    ``format`` record gives two: the content accuracy and the format compliance rate)."""
    lines = ["## Evaluation", "", "| dataset | scoring | shots | adapter weights sha256 | accuracy | 95% CI | n |",
             "|---|---|---|---|---|---|---|"]

    def row(rec: dict, scoring: str, value: object, ci: list) -> str:
        key = rec.get("key") or {}
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if all(isinstance(c, (int, float)) for c in ci[:2]) else "-"
        sha = key.get("adapter_sha256")
        return (f"| {_cell(rec.get('dataset') or key.get('dataset'))} | {_cell(scoring)} | "
                f"{_cell(key.get('shots', '-'))} | {f'`{sha[:16]}…`' if sha else 'base model'} | "
                f"{f'{value:.3f}' if isinstance(value, (int, float)) else '-'} | {ci_text} | {_cell(rec.get('n'))} |")

    for rec in records:
        key = rec.get("key") or {}
        scoring = rec.get("scoring") or key.get("scoring") or key.get("recipe") or "top1"
        metrics = rec.get("metrics") or {}
        if "format_rate" in metrics:
            lines.append(row(rec, f"{scoring}: content", rec.get("accuracy"), rec.get("ci") or [None, None]))
            lines.append(row(rec, f"{scoring}: compliance", metrics["format_rate"],
                             metrics.get("format_ci") or [None, None]))
            if "joint_rate" in metrics:
                lines.append(row(rec, f"{scoring}: joint (in format and correct)", metrics["joint_rate"],
                                 metrics.get("joint_ci") or [None, None]))
        else:
            lines.append(row(rec, scoring, rec.get("accuracy"), rec.get("ci") or [None, None]))
    return [*lines, ""]


def read_eval_record(path: str | os.PathLike) -> dict:
    """A ``tada eval`` record (the ``.json`` beside the predictions; the ``.jsonl`` names it too)."""
    p = Path(path)
    if p.suffix == ".jsonl":
        p = p.with_suffix(".json")
    record = read_json_object(p, "evaluation record")
    if "accuracy" not in record or not isinstance(record.get("key"), dict):
        raise TadaError(f"{p}: not a `tada eval` record (no key/accuracy)")
    return record


def write_card(folder: str | os.PathLike, eval_files: tuple[str, ...] | list[str] = ()) -> Path:
    """Rewrite ``folder``/README.md from its report and config (and ``eval_files``), atomically."""
    folder = Path(folder)
    report = read_json_object(folder / REPORT_NAME, "merge report (is this a folder written by tada merge?)")
    config = read_json_object(folder / "adapter_config.json", "adapter config")
    from ..adapters import read_prompt_format

    text = model_card(report, config, [read_eval_record(f) for f in eval_files], prompt=read_prompt_format(folder))
    return write_text(folder / CARD_NAME, text)
