"""``tada tune``: flags generated from :class:`tada.options.TuneOptions`; progress on stderr."""
from __future__ import annotations

import json

import click

from ..errors import TadaError
from ..options import TuneOptions, options_of
from .app import cli
from .options import add_options, given

TUNE_OPTIONS = options_of(TuneOptions)


@cli.command()
@click.option("--task", help="Task adapter: PEFT folder or hub id.")
@click.option("--domain", multiple=True, help="Domain adapter: PEFT folder or hub id; repeat for K domain adapters, "
                                              "each with its --domain-probe/--domain-stats in the same order.")
@add_options(TUNE_OPTIONS)
@click.option("--json", "as_json", is_flag=True, help="Print the summary (one JSON object) on stdout.")
def tune(task, domain, as_json, **opts) -> None:
    """Tune every merge method with the same trial budget on validation data; write the leaderboard and best adapter."""
    from ..bench.tune import tune as run_tune

    if not task:
        raise TadaError("`task` is required")
    if not domain:
        raise TadaError("`domain` is required (repeat it for several domain adapters)")
    values = given(opts, TUNE_OPTIONS)
    summary = run_tune(task, list(domain), **values)
    if as_json:
        click.echo(json.dumps(summary))
        return
    for row in sorted(summary["methods"], key=lambda r: -(r["score"] if r["score"] is not None else -1)):
        score = f"{row['score']:.3f}" if row["score"] is not None else "-"
        ci = " [{:.3f}, {:.3f}]".format(*row["ci"]) if row.get("ci") else ""
        click.echo(f"{row['method']}: {score}{ci}  ({row['trials_used']} trials, {row['pruned']} pruned)  "
                   f"{row['setting']}")
    if summary.get("winner"):
        click.echo(f"winner: {summary['winner']} -> {summary['adapters']['best']}")
    click.echo(f"leaderboard: {summary['leaderboard'][1]}")
