"""``tada plot-alpha``: the paper's Fig. 2 from one or two merge reports."""
# Imports inside the command functions are deferred on purpose (start-up time): matplotlib is imported
# only when a plot is drawn.
from __future__ import annotations

from pathlib import Path

import click

from ..errors import TadaError
from .app import cli


@cli.command("plot-alpha", short_help="Fig. 2: per-layer task weight α of one or two TaDA merges.")
@click.argument("reports", nargs=-1, required=True)
@click.option("--out", default="alpha.png", show_default=True, help="PNG path (an .svg is written beside it).")
@click.option("--title", "titles", multiple=True, help="Panel title (repeat per report; default: the merged folder's name).")
def plot_alpha_cmd(reports, out, titles) -> None:
    """Fig. 2: per-layer task weight α of one or two TaDA merges (report files or merged folders)."""
    from ..analysis.plots import panel_title, plot_alpha, read_report

    if len(reports) > 2:
        raise TadaError("plot-alpha takes one or two reports")
    if titles and len(titles) != len(reports):
        raise TadaError("give one --title per report")
    plot_alpha([read_report(r) for r in reports], out, list(titles) or [panel_title(r) for r in reports])
    click.echo(f"wrote {out} and {Path(out).with_suffix('.svg')}")
