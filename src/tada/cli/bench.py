"""``tada bench``: the paper's Table 3 (language) or Table 4 (vision) from a YAML or a preset."""
# The runner is imported inside the command (start-up time: `tada bench --help` without torch).
from __future__ import annotations

import sys

import click

from ..bench.config import PRESETS
from ..options import BenchOverrides, options_of
from .app import cli
from .options import add_options, click_option, given

BENCH_OVERRIDES = options_of(BenchOverrides)

#: ``--device`` / ``--model-dtype`` of ``tada bench`` and ``tada analyze``: overrides of the configuration.
device_override, model_dtype_override = (click_option(o) for o in BENCH_OVERRIDES if o.name in ("device", "model_dtype"))



@cli.command()
@click.option("--config", "config_file", help="Bench YAML (see docs/evaluation.md).")
@click.option("--preset", help=f"A named configuration: {', '.join(PRESETS)}.")
@add_options(BENCH_OVERRIDES)
@click.option("--dry-run", is_flag=True, help="Validate and report what cannot be reached; run nothing.")
@click.option("--quiet", is_flag=True)
def bench(config_file, preset, dry_run, quiet, **overrides) -> None:
    """Base, task only, domain only and every merge method on every dataset: the paper's Table 3
    (language) or Table 4 (vision: presets vit-l16, dinov2-offline, or a config with modality: vision)."""
    from ..bench.run import any_bench_config, run_bench

    cfg = any_bench_config(config_file, preset, given(overrides, BENCH_OVERRIDES))
    command = "tada " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else f"tada bench --preset {preset}"
    outcome = run_bench(cfg, command=command, dry_run=dry_run, progress=not quiet, show=not quiet)
    if outcome.table:
        click.echo(outcome.table)
    for path in outcome.written:
        click.echo(f"wrote {path}")
    if outcome.dry_run:
        for p in outcome.problems:
            click.echo(f"cannot reach: {p}")
        click.echo("dry run: configuration valid" + (f", {len(outcome.problems)} problem(s)" if outcome.problems
                                                     else ", everything reachable"))
        if outcome.problems:
            sys.exit(2)
