"""``tada card``: (re)write a merged adapter's README.md model card, optionally with an evaluation table."""
from __future__ import annotations

import click

from ..report.card import write_card
from .app import cli


@cli.command("card")
@click.argument("out")
@click.option("--eval", "evals", multiple=True,
              help="A `tada eval` record (.json beside its predictions) to list in the card (repeatable).")
def card_cmd(out, evals) -> None:
    """Rewrite the README.md model card of merged adapter OUT (with an evaluation table from --eval)."""
    click.echo(f"wrote {write_card(out, evals)}")
