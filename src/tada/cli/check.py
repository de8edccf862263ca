"""``tada check``: what a serving stack would refuse in an adapter folder."""
from __future__ import annotations

import sys

import click

from ..report.serving import TARGETS, VLLM_DEFAULT_MAX_LORA_RANK, refusals
from .app import cli


@cli.command("check")
@click.argument("adapter")
@click.option("--target", type=click.Choice(list(TARGETS)), default="vllm", show_default=True)
@click.option("--max-lora-rank", type=int, default=VLLM_DEFAULT_MAX_LORA_RANK, show_default=True,
              help="vLLM's --max-lora-rank the server runs with.")
def check(adapter, target, max_lora_rank) -> None:
    """Print what TARGET would refuse in ADAPTER (exit 2 if anything); nothing loads a model."""
    problems = refusals(adapter, target, max_lora_rank=max_lora_rank)
    for line in problems:
        click.echo(f"refused by {target}: {line}")
    if problems:
        sys.exit(2)
    click.echo(f"{adapter}: {target} loads it as it is")
