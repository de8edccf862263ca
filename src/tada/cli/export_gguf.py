"""``tada export-gguf``: a PEFT LoRA adapter as a GGUF LoRA file for llama.cpp and Ollama."""
from __future__ import annotations

import click

from ..gguf_lora import DTYPES, export_gguf_lora
from .app import cli


@cli.command("export-gguf")
@click.argument("adapter")
@click.argument("out")
@click.option("--base", help="The base model's .gguf file (or transformers folder) the adapter was "
                             "trained on [default: the embedded SmolLM2 when the adapter names it].")
@click.option("--outtype", type=click.Choice(DTYPES), default="f32", show_default=True,
              help="Tensor type of lora_a/lora_b in the file.")
def export_gguf(adapter, out, base, outtype) -> None:
    """Write LoRA adapter ADAPTER as GGUF file OUT for llama.cpp (--lora) and Ollama (ADAPTER)."""
    path = export_gguf_lora(adapter, out, base=base, dtype=outtype)
    click.echo(f"wrote {path} (llama.cpp: llama-cli -m BASE.gguf --lora {path}; Ollama Modelfile: "
               f"FROM BASE.gguf / ADAPTER {path})")
