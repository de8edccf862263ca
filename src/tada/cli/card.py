"""``tada card``: (re)write a merged adapter's README.md model card, optionally with an evaluation table."""
from __future__ import annotations

import click

from ..report.card import write_card
from .app import cli


@cli.command("card")
@click.argument("out")
@click.option("--eval", "evals", multiple=True,
              help="A `tada eval` record (.json beside its predictions) to add to the card's evaluations (repeatable).")
@click.option("--force", is_flag=True,
              help="Write the card above a README.md tada did not write (no tada markers), keeping its text below.")
def card_cmd(out, evals, force) -> None:
    """Rewrite the README.md model card of merged adapter OUT (with an evaluation table from --eval).

    Only the part between <!-- tada:begin --> and <!-- tada:end --> is rewritten: text around it
    stays. Each --eval adds rows to the evaluations listed before (tada_card_evals.json)."""
    click.echo(f"wrote {write_card(out, evals, force=force)}")
