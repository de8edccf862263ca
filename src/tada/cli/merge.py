"""``tada merge``: flags generated from :class:`tada.options.MergeOptions` and every method's parameters."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .. import api
from ..errors import TadaError
from ..fileio import load_yaml_mapping
from ..options import MERGE_OUTPUT_KEYS, MERGE_PATH_KEYS, MERGE_YAML_KEYS, MergeOptions, options_of
from ..summary import print_summary
from .app import cli
from .options import add_options, given, method_options, pairs

MERGE_OPTIONS = options_of(MergeOptions)
METHOD_OPTIONS, METHOD_HELP = method_options()


DOMAIN_ENTRY_KEYS = ("adapter", "probe", "stats", "revision", "weight")


def load_yaml_config(path: str) -> dict:
    """A merge YAML: the same keys as the CLI options (underscores), plus ``parameters:``, and for
    K domain adapters ``domains:``, a list of ``{adapter, probe | stats, revision, weight}`` (with
    ``weight``s, ``task_weight`` gives the task adapter's)."""
    data = load_yaml_mapping(path, "config file", MERGE_PATH_KEYS, MERGE_OUTPUT_KEYS)
    allowed = {*MERGE_YAML_KEYS, "domains", "task_weight"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TadaError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if "domains" in data:
        data.update(_domains(data.pop("domains"), data.pop("task_weight", None), Path(path).parent, path))
    elif "task_weight" in data:
        raise TadaError(f"{path}: task_weight goes with a domains: list whose entries have a weight")
    return data


def _domains(entries, task_weight, folder: Path, where: str) -> dict:
    """``domains:`` → the ``domain``/``domain_probe``/``domain_stats``/``domain_revision`` lists
    (paths relative to the YAML's folder, as the other paths) and, with weights, ``parameters.weights``."""
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise TadaError(f"{where}: domains: must be a list of mappings {{adapter, probe | stats, weight}}")
    out: dict = {"domain": [], "domain_probe": [], "domain_stats": [], "domain_revision": []}
    weights = []
    for i, e in enumerate(entries, 1):
        unknown = sorted(set(e) - set(DOMAIN_ENTRY_KEYS))
        if unknown or "adapter" not in e:
            raise TadaError(f"{where}: domains entry {i}: needs adapter; allowed keys: {', '.join(DOMAIN_ENTRY_KEYS)}")
        for key, target in (("adapter", "domain"), ("probe", "domain_probe"), ("stats", "domain_stats")):
            value = e.get(key)
            if isinstance(value, str) and not Path(value).is_absolute() and (folder / value).exists():
                value = str(folder / value)
            out[target].append(value)
        out["domain_revision"].append(e.get("revision"))
        weights.append(e.get("weight"))
    out = {k: v for k, v in out.items() if any(x is not None for x in v)}
    if any(w is not None for w in weights):
        if any(w is None for w in weights) or task_weight is None:
            raise TadaError(f"{where}: give a weight for every domains entry and task_weight, or none")
        out["parameters_weights"] = (float(task_weight), *(float(w) for w in weights))
    return out


@cli.command()
@click.option("--config", "config_file", type=str, help="YAML file with the same options (CLI wins).")
@click.option("--task", help="Task adapter: PEFT folder or hub id.")
@click.option("--domain", multiple=True, help="Domain adapter: PEFT folder or hub id; repeat for K domain "
                                            "adapters, each with its --domain-probe/--domain-stats in the same order.")
@click.option("--method", help="tada (default) or any method of `tada methods`.")
@add_options(MERGE_OPTIONS)
@click.option("--no-cache", is_flag=True, help="Recompute probe statistics.")
@add_options(METHOD_OPTIONS, METHOD_HELP)
@click.option("--param", "params", multiple=True, help="Any method parameter KEY=VALUE (repeatable).")
@click.option("--summary", "show_tables", is_flag=True, help="Also print TaDA's per-layer α table(s).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (output, method, parameters, "
                                                      "calibration, summary) and nothing else on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bars or summary.")
def merge(config_file, task, domain, method, no_cache, params, show_tables, as_json, quiet, **opts) -> None:
    """Merge TASK and DOMAIN adapters (see `tada methods` for every method's parameters)."""
    cfg = load_yaml_config(config_file) if config_file else {}
    method_params = dict(cfg.pop("parameters", None) or {})
    if "parameters_weights" in cfg:
        method_params.setdefault("weights", cfg.pop("parameters_weights"))
    for key, value in given(opts, METHOD_OPTIONS).items():
        method_params[key] = {**method_params.get(key, {}), **value} if isinstance(value, dict) else value
    method_params.update(pairs(params, "--param"))
    merged = {**cfg, **given(opts, MERGE_OPTIONS),
              **{k: v for k, v in {"task": task, "method": method}.items() if v is not None},
              **({"domain": domain[0] if len(domain) == 1 else list(domain)} if domain else {})}
    for required in ("task", "domain", "out"):
        if not merged.get(required):
            raise TadaError(f"`{required}` is required (on the command line or in --config)")
    result = api.merge(merged.pop("task"), merged.pop("domain"), params=method_params, use_cache=not no_cache,
                       progress=not (quiet or as_json), **merged)
    if as_json:
        rep = result.report
        click.echo(json.dumps({"out": result.out, "method": rep["method"], "params": rep["params"],
                               "calibration": rep.get("calibration"), "summary": rep["summary"],
                               "warnings": rep["warnings"]}))
        return
    if not quiet:
        print_summary(result, tables=show_tables)
    click.echo(f"wrote {result.out}")
    if merged.get("push_to_hub"):
        click.echo(f"pushed to {merged['push_to_hub']}")
