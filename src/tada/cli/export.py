"""``tada export-base``: the base model as a plain transformers folder for other tools."""
from __future__ import annotations

import click

from ..options import ExportOptions, options_of
from .app import cli
from .options import add_options, given


@cli.command("export-base")
@click.argument("out")
@add_options(options_of(ExportOptions))
def export_base(out, **opts) -> None:
    """Write the base model as a transformers folder (config + safetensors + tokenizer) that
    lm-evaluation-harness, vLLM and PEFT load without GGUF support."""
    from ..api.evaluating import export_base

    path = export_base(out, **given(opts, options_of(ExportOptions)))
    click.echo(f"wrote {path} (load it with AutoModelForCausalLM.from_pretrained({str(path)!r}))")
