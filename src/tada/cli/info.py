"""``tada inspect``, ``tada methods``, ``tada datasets``: what an adapter, the registry and the
dataset registry hold."""
# Imports inside the command functions are deferred on purpose (start-up time): each command imports
# only what it shows: `tada datasets` and `tada methods` start without the others' libraries.
from __future__ import annotations

import json

import click

from .app import cli


@cli.command()
@click.argument("adapter")
@click.option("--revision")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(adapter, revision, as_json) -> None:
    """Rank, alpha, scaling, targets and per-module ‖ΔW‖ of an adapter."""
    from ..report.describe import describe

    info = describe(adapter, revision=revision)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for key in ("path", "base_model", "r", "lora_alpha", "use_rslora", "target_modules", "modules",
                "dtype", "modules_to_save"):
        console.print(f"[bold]{key}[/]: {info[key]}")
    table = Table("module", "rank", "scaling", "d_out×d_in", "‖ΔW‖_F")
    for m in info["per_module"]:
        table.add_row(m["name"], str(m["rank"]), f"{m['scaling']:.4g}", f"{m['d_out']}×{m['d_in']}", f"{m['norm']:.4g}")
    console.print(table)
    merge = info.get("merge")
    if merge and merge.get("grids"):
        from ..report.summary import alpha_table

        names = merge.get("names", {})
        for side, grid in merge["grids"].items():
            against = f" against {names.get(side, side)}"
            alpha = alpha_table(grid, title=f"merged by tada ({merge['method']}): task weight α{against} "
                                            "per layer and role (α ≥ 0.5: task-dominant)")
            if alpha is not None:
                console.print(alpha)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: every method's metadata and parameters.")
def methods(as_json) -> None:
    """List the merge methods and their parameters with defaults."""
    from ..methods import get_method, method_names
    from ..options import options_of

    if as_json:
        out = {}
        for name in method_names():
            spec = get_method(name)
            out[name] = {"summary": spec.summary, "label": spec.label, "reference": spec.reference,
                         "exact": spec.exact, "needs_probes": spec.needs_probes, "sweeps": list(spec.sweeps),
                         "params": {o.name: {"default": o.default, "help": o.help, "flag": o.flag,
                                             "search": None if o.search is None else str(o.search)}
                                    for o in options_of(spec.params)}}
        click.echo(json.dumps(out, default=list))
        return
    for name in method_names():
        spec = get_method(name)
        fields = ", ".join(f"{o.name}={o.default!r}" for o in options_of(spec.params))
        searched = ", ".join(f"{'task_weight' if o.name == 'weights' else o.name} {o.search}"
                             for o in options_of(spec.params) if o.search is not None)
        click.echo(f"{name:16s} {spec.summary}\n{'':16s} params: {fields}"
                   + (f"\n{'':16s} tada tune searches: {searched}" if searched else ""))


@cli.command()
@click.option("--export-lm-eval", "export", nargs=2, metavar="DIR NAME",
              help="Write dataset NAME (a registered name or a .jsonl file) into DIR as an lm-evaluation-harness "
                   "task (YAML + JSONL): `lm_eval --include_path DIR --tasks <task>` scores it as tada's zero-shot "
                   "cloze scoring does (acc, acc_norm).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="--export-lm-eval: the split seed (held-out few-shot questions, SciQ's option order), as "
                   "tada eval --seed.")
def datasets(export, seed) -> None:
    """List the registered evaluation datasets (a .jsonl path works too; see docs/datasets.md)."""
    if export:
        from ..eval.lm_eval_export import export_lm_eval, tada_eval_flags

        out_dir, name = export
        task, config, data = export_lm_eval(out_dir, name, split_seed=seed)
        n = sum(1 for _ in data.open(encoding="utf-8"))
        click.echo(f"lm-eval task {task}: {n} questions\n  {config}\n  {data}\n"
                   f"run: lm_eval --model hf --model_args pretrained=... --include_path {out_dir} --tasks {task}\n"
                   f"the same number in tada (zero-shot cloze, lm-eval's --limit N is --first N): "
                   f"{tada_eval_flags(name)}")
        return
    from ..eval.datasets import DATASETS
    from ..vision.hub_image_sets import HUB_IMAGE_SETS

    for name, spec in sorted(DATASETS.items()):
        click.echo(f"{name:26s} {spec.summary}")
    click.echo("\nimage sets (tada train/eval/probe --images; NAME or NAME:train|test; or an ImageFolder directory):")
    click.echo(f"{'fashion-mnist':26s} Fashion-MNIST from Debian's dataset-fashion-mnist (offline), 60,000 / 10,000")
    click.echo(f"{'sklearn-digits':26s} scikit-learn's handwritten digits (offline), 1,297 train / 500 test")
    for name, image_set in sorted(HUB_IMAGE_SETS.items()):
        click.echo(f"{name:26s} {image_set.summary}")
