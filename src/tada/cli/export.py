"""``tada export-base``: the base model as a plain transformers folder for other tools."""
from __future__ import annotations

import click

from .. import api
from .app import cli


@cli.command("export-base")
@click.argument("out")
@click.option("--base", help="Base model: folder, hub id, .gguf file [default: the embedded SmolLM2-135M-Instruct].")
@click.option("--gguf-file")
@click.option("--revision")
@click.option("--dtype", help="Weights dtype to write (default float32).")
@click.option("--force", is_flag=True, help="Replace an existing export.")
def export_base(out, base, gguf_file, revision, dtype, force) -> None:
    """Write the base model as a transformers folder (config + safetensors + tokenizer) that
    lm-evaluation-harness, vLLM and PEFT load without GGUF support."""
    path = api.export_base(out, base=base, gguf_file=gguf_file, revision=revision, dtype=dtype, force=force)
    click.echo(f"wrote {path} (load it with AutoModelForCausalLM.from_pretrained({str(path)!r}))")
