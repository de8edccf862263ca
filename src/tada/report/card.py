"""The ``README.md`` model card of a merged adapter, built from its report (pure: no I/O, no torch).

YAML front matter (``base_model`` when it is a hub id, ``library_name: peft``, ``tags``), then the
method and every parameter, the inputs (source, revision, sha256 of the weights), the probes and
their hashes, TaDA's α summary, how to load the adapter with PEFT, how to prompt it (from the task
adapter's ``tada_prompt.json``, when it has one), and optionally a table of
``tada eval`` records (:mod:`tada.eval.records`). Same report ⇒ same bytes.

The generated part sits between :data:`BEGIN` and :data:`END` (the front matter above it): ``tada
card`` rewrites only that part and the front matter's own keys, so what a user wrote around it
(and their front-matter keys) stays; a README.md without the markers that tada did not write is
refused unless ``force`` (then the card goes on top and the user's text is kept below it). The
evaluations listed so far are kept in :data:`EVALS_NAME` beside the card, so each ``tada card
--eval`` adds rows (a record of the same key replaces its earlier row in place).
"""
from __future__ import annotations

import json
import os
from typing import Any

from pathlib import Path

from ..io.atomic import write_json, write_text
from ..io.files import read_json_object
from ..errors import TadaError
from ..io.hub import is_hub_id
from . import REPORT_NAME
from .alpha import source_name

CARD_NAME = "README.md"
#: The evaluation records listed in the card so far (rows only: key, accuracy, interval, n, metrics).
EVALS_NAME = "tada_card_evals.json"
TAGS = ("tada", "lora", "merge")
BEGIN = "<!-- tada:begin -->"
END = "<!-- tada:end -->"
_TITLE = "# LoRA adapter merged with tada ("

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


def _side_order(side: str) -> tuple[int, int]:
    """task, domain, domain2, domain3, … (a report read back has its keys sorted: domain10 < domain2)."""
    if side == "task":
        return (0, 0)
    digits = side[len("domain"):]
    return (1, int(digits) if digits.isdigit() else 1)


def _inputs(report: dict) -> list[tuple[str, dict]]:
    """(role, summary) of every input adapter in the merge's order: the task, then the domain
    adapters (``domain 1``, ``domain 2``… in a K-way merge)."""
    inputs = report.get("inputs") or {}
    sides = {k: v for k, v in inputs.items() if k != "domains" and isinstance(v, dict)}
    domains = inputs.get("domains")
    kway: dict = domains if isinstance(domains, dict) else {}
    sides.update({k: v for k, v in kway.items() if isinstance(v, dict)})
    ordered = sorted(sides, key=_side_order)
    return [(f"domain {_side_order(side)[1]}" if kway and side != "task" else side, sides[side]) for side in ordered]


def model_card(report: dict, config: dict, evals: list[dict] | None = None, prompt: dict | None = None,
               tuning: dict | None = None) -> str:
    """The card's Markdown text for a merge ``report`` (``tada_report.json``) and the written
    ``config`` (``adapter_config.json``); ``evals``: ``tada eval`` records for a results table;
    ``prompt``: the task adapter's ``tada_prompt.json`` for a "How to prompt" section; ``tuning``:
    how ``tada tune`` picked these settings (objective, budget, validation sets, score, sampler,
    pruner)."""
    method = report.get("method", "?")
    base = config.get("base_model_name_or_path")
    lines = [_front_matter(base) + BEGIN, f"{_TITLE}{method})", ""]
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

    lines += ["## Inputs", "", "| role | name | adapter | revision | base model | r | modules | weights sha256 |",
              "|---|---|---|---|---|---|---|---|"]
    for role, s in inputs:
        lines.append(f"| {role} | {_cell(source_name(s.get('source')))} | `{_cell(s.get('source'))}` | "
                     f"{_cell(s.get('revision') or '-')} | "
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
    return "\n".join(lines).rstrip("\n") + "\n" + END + "\n"


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


def _split_front_matter(text: str) -> tuple[dict, str]:
    """(front-matter keys, the rest) of a Markdown text; ({}, text) without a YAML front matter."""
    import yaml

    if text.startswith("---\n") and "\n---\n" in text[3:]:
        head, rest = text[4:].split("\n---\n", 1)
        try:
            meta = yaml.safe_load(head)
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict):
            return meta, rest
    return {}, text


def place_card(generated: str, existing: str | None, *, force: bool = False, where: str = CARD_NAME) -> str:
    """The new README.md: ``generated`` (front matter, then the part between the markers) over
    ``existing``: its text outside the markers and its own front-matter keys kept; a card tada
    wrote before the markers existed is replaced whole; any other text is refused unless ``force``
    (then kept below the card)."""
    import yaml

    if existing is None:
        return generated
    new_meta, block = _split_front_matter(generated)
    old_meta, rest = _split_front_matter(existing)
    if BEGIN in rest and END in rest[rest.index(BEGIN):]:
        i = rest.index(BEGIN)
        j = rest.index(END, i) + len(END)
        tail = rest[j:]
        rest = rest[:i] + block.rstrip("\n") + (tail if tail.startswith("\n") else "\n" + tail)
    elif rest.lstrip().startswith(_TITLE) and "tada" in (old_meta.get("tags") or []):
        rest = block  # a card tada wrote before it had markers
    elif not rest.strip() and not old_meta:
        rest = block
    elif force:
        rest = block + "\n" + rest
    else:
        raise TadaError(f"{where} holds text tada did not write (no {BEGIN} … {END} markers): not replaced; "
                        f"put the markers where the card goes, or pass --force to put the card above it")
    tags = [*new_meta.get("tags", []), *(t for t in old_meta.get("tags") or [] if t not in new_meta.get("tags", []))]
    meta = {**new_meta, **{k: v for k, v in old_meta.items() if k not in new_meta}, "tags": tags}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, default_flow_style=False) + "---\n" + rest


def _row_record(record: dict) -> dict:
    """What a card's evaluation row needs from a ``tada eval`` record (not its predictions)."""
    keep = ("dataset", "scoring", "key", "accuracy", "ci", "n")
    row = {k: record[k] for k in keep if k in record}
    metrics = record.get("metrics") or {}
    if metrics:
        row["metrics"] = {k: v for k, v in metrics.items() if k in ("format_rate", "format_ci")}
    return row


def accumulate(previous: list[dict], records: list[dict]) -> list[dict]:
    """The card's evaluations: the earlier ones in their order, then the new ones; a new record
    with the key of an earlier one (the same cell evaluated again) takes its place."""
    out = [dict(r) for r in previous]
    for rec in records:
        row = _row_record(rec)
        same = [i for i, r in enumerate(out) if r.get("key") == row.get("key")]
        if same:
            out[same[0]] = row
        else:
            out.append(row)
    return out


def write_card(folder: str | os.PathLike, eval_files: tuple[str, ...] | list[str] = (), *,
               force: bool = False) -> Path:
    """Rewrite the generated part of ``folder``/README.md from its report and config, with every
    evaluation listed so far plus ``eval_files`` (kept in :data:`EVALS_NAME`); what the user wrote
    around it stays (:func:`place_card`). Atomic."""
    folder = Path(folder)
    report = read_json_object(folder / REPORT_NAME, "merge report (is this a folder written by tada merge?)")
    config = read_json_object(folder / "adapter_config.json", "adapter config")
    records = [read_eval_record(f) for f in eval_files]
    previous: list[dict] = []
    if (folder / EVALS_NAME).is_file():
        stored = read_json_object(folder / EVALS_NAME, "the card's evaluations")
        previous = [r for r in stored.get("evaluations", []) if isinstance(r, dict)]
    evals = accumulate(previous, records)
    card = folder / CARD_NAME
    existing = card.read_text(encoding="utf-8") if card.is_file() else None
    from ..adapters import read_prompt_format

    text = place_card(model_card(report, config, evals, prompt=read_prompt_format(folder)), existing, force=force,
                      where=str(card))
    if records:
        write_json(folder / EVALS_NAME, {"evaluations": evals}, sort_keys=False)
    return write_text(card, text)
