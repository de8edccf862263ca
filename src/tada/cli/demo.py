"""``tada demo``: the embedded default run."""
# Imports inside the command functions are deferred on purpose (start-up time): the demo's modules
# load only when it runs.
from __future__ import annotations

import click

from .app import cli


@cli.command()
@click.option("--out", default="tada-demo-output", show_default=True)
@click.option("--examples", "examples_dir", help="Folder with adapters/ and probes/ (default: the repo's examples/).")
@click.option("--n", "n", type=click.IntRange(min=1), default=40, show_default=True,
              help="Held-out questions per set in the measured table.")
def demo(out, examples_dir, n) -> None:
    """The embedded default: merge the shipped example adapters on SmolLM2-135M-Instruct and try the result."""
    from ..bench.demo import run_demo

    run_demo(out, examples_dir, n)
