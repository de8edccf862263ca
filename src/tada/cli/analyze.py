"""``tada analyze``: the paper's analyses (Tables 5-8) on a bench configuration."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the runner is imported inside each command (start-up time: --help without torch)
    from ..bench import run as bench_run
from ..errors import TadaError
from .app import cli
from .bench import device_override, model_dtype_override


def analysis_options(f):
    for option in reversed([
        click.option("--config", "config_file", help="Bench YAML giving base, adapters, probes, datasets."),
        click.option("--preset", help="A named bench configuration, e.g. smollm2-offline."),
        click.option("--out", default="tada-analysis", show_default=True, help="Output folder."),
        device_override,
        click.option("--quiet", is_flag=True)]):
        f = option(f)
    return f


def _show(result: bench_run.Analysis, quiet: bool) -> None:
    click.echo(result.markdown if not quiet else "")
    click.echo(f"wrote {', '.join(str(f) for f in result.written)}")


@cli.group()
def analyze() -> None:
    """The paper's analyses: probe size (Table 5), probe mismatch (6), ablations (7), timing (8)."""


@analyze.command("probe-size")
@analysis_options
@model_dtype_override
@click.option("--sizes", default="4,8,16,32,64", show_default=True)
@click.option("--subsets", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def analyze_probe_size(config_file, preset, out, device, model_dtype, quiet, sizes, subsets, seed) -> None:
    """Table 5: mean over modules of std(α) across random probe subsets of each size N."""
    from ..bench import run as bench_run

    cfg = bench_run.text_bench_config(config_file, preset, {"device": device, "model_dtype": model_dtype})
    try:
        ns = [int(x) for x in sizes.split(",") if x]
    except ValueError:
        raise TadaError(f"--sizes must be integers separated by commas, got {sizes!r}") from None
    _show(bench_run.probe_size(cfg, ns, subsets, seed, Path(out), progress=not quiet), quiet)


@analyze.command("timing")
@analysis_options
@click.option("--methods", default="tada,linear,task_arithmetic,svd,ties,dare_linear,dare_ties,magnitude_prune",
              show_default=True)
def analyze_timing(config_file, preset, out, device, quiet, methods) -> None:
    """Table 8: wall time of each merge step for TaDA and the baselines, in one run."""
    from ..bench import run as bench_run

    cfg = bench_run.text_bench_config(config_file, preset, {"device": device})
    result = bench_run.timing(cfg, [m for m in methods.split(",") if m], Path(out), progress=not quiet)
    click.echo(result.markdown)
    click.echo(f"wrote {', '.join(str(f) for f in result.written)}")


@analyze.command("ablation")
@analysis_options
@model_dtype_override
@click.option("--datasets", help="Comma-separated datasets (default: the configuration's).")
@click.option("--scoring", help="letter, cloze or both comma-separated (default: the configuration's).")
@click.option("--limit", type=int)
def analyze_ablation(config_file, preset, out, device, model_dtype, quiet, datasets, scoring, limit) -> None:
    """Table 7: every TaDA ablation switch (SPEC §6) evaluated on the benchmark sets."""
    from ..bench import run as bench_run

    cfg = bench_run.any_bench_config(config_file, preset, {"datasets": datasets, "scoring": scoring, "limit": limit,
                                                           "device": device, "model_dtype": model_dtype})
    if scoring and getattr(cfg, "modality", "text") == "vision":
        raise TadaError("--scoring is for language benchmarks (vision is top-1)")
    _show(bench_run.ablation(cfg, Path(out), progress=not quiet), quiet)


@analyze.command("probe-mismatch")
@analysis_options
@model_dtype_override
@click.option("--mismatch-probe", "mismatch", multiple=True, help="Another domain's probe file (repeatable).")
@click.option("--datasets", help="Comma-separated datasets (default: the configuration's).")
@click.option("--scoring", help="letter, cloze or both comma-separated (default: the configuration's).")
@click.option("--limit", type=int)
def analyze_probe_mismatch(config_file, preset, out, device, model_dtype, quiet, mismatch, datasets, scoring,
                           limit) -> None:
    """Table 6: TaDA with the matched domain probe vs general text or another domain's probe."""
    from ..bench import run as bench_run

    cfg = bench_run.text_bench_config(config_file, preset, {"datasets": datasets, "scoring": scoring,
                                                            "limit": limit, "device": device,
                                                            "model_dtype": model_dtype})
    _show(bench_run.probe_mismatch(cfg, list(mismatch), Path(out), progress=not quiet), quiet)


def _replicate(spec: str) -> tuple[str, str | tuple[str, ...]]:
    """``NAME=RECORDS.jsonl.gz`` (a bench's records) or ``NAME=TASK,DOMAIN[,DOMAIN...]`` (the adapters
    to score: one domain adapter, or as many as the configuration's ``domains``, in their order)."""
    name, sep, source = spec.partition("=")
    parts = [p for p in source.split(",") if p]
    if not sep or not name or not parts:
        raise TadaError("--replicate takes NAME=RECORDS.jsonl.gz or NAME=TASK_ADAPTER,DOMAIN_ADAPTER[,DOMAIN_ADAPTER...], "
                        f"got {spec!r}")
    return name, parts[0] if len(parts) == 1 else tuple(parts)


def _pair(spec: str) -> tuple[str, str]:
    first, sep, second = spec.partition(":")
    if not sep or not first or not second:
        raise TadaError(f"--compare takes FIRST_ROW:SECOND_ROW, got {spec!r}")
    return first, second


@analyze.command("seeds")
@analysis_options
@model_dtype_override
@click.option("--replicate", "replicates", multiple=True, required=True,
              help="NAME=RECORDS.jsonl.gz (a bench's committed records) or NAME=TASK,DOMAIN[,DOMAIN...] (the "
                   "adapters to score; with `domains` in the configuration, one per entry, in its order); repeat, "
                   "at least twice.")
@click.option("--rows", required=True, help="Comma-separated row keys to replicate (e.g. task,tada,tada-tuned).")
@click.option("--compare", "compare", multiple=True, help="FIRST:SECOND rows to test pooled over replicates "
                                                          "(repeatable).")
@click.option("--measure", type=click.Choice(["joint", "format_ok", "correct"]), default="joint", show_default=True)
@click.option("--report", help="A Markdown page whose generated block gets the tables.")
def analyze_seeds(config_file, preset, out, device, model_dtype, quiet, replicates, rows, compare, measure,
                  report) -> None:
    """Training-seed variance: rows re-scored on retrained adapter pairs; mean ± sd over replicates
    and paired tests pooled over them (stratified exact McNemar, Holm)."""
    import shlex

    from ..bench import run as bench_run

    cfg = bench_run.text_bench_config(config_file, preset, {"device": device, "model_dtype": model_dtype})
    source = ["--preset", preset] if preset else ["--config", config_file]
    command = shlex.join(["tada", "analyze", "seeds", *source, *(a for r in replicates for a in ("--replicate", r)),
                          "--rows", rows, *(a for c in compare for a in ("--compare", c)), "--measure", measure])
    result = bench_run.seed_replication(cfg, [_replicate(r) for r in replicates], [r for r in rows.split(",") if r],
                                        [_pair(c) for c in compare], Path(out), measure=measure, report=report,
                                        command=command, progress=not quiet)
    _show(result, quiet)
