"""``tada merge``: flags generated from :class:`tada.options.MergeOptions` and every method's parameters."""
from __future__ import annotations

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


def load_yaml_config(path: str) -> dict:
    """A merge YAML: the same keys as the CLI options (underscores), plus ``parameters:``."""
    data = load_yaml_mapping(path, "config file", MERGE_PATH_KEYS, MERGE_OUTPUT_KEYS)
    unknown = sorted(set(data) - set(MERGE_YAML_KEYS))
    if unknown:
        raise TadaError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(MERGE_YAML_KEYS))}")
    return data


@cli.command()
@click.option("--config", "config_file", type=str, help="YAML file with the same options (CLI wins).")
@click.option("--task", help="Task adapter: PEFT folder or hub id.")
@click.option("--domain", help="Domain adapter: PEFT folder or hub id.")
@click.option("--method", help="tada (default) or any method of `tada methods`.")
@add_options(MERGE_OPTIONS)
@click.option("--no-cache", is_flag=True, help="Recompute probe statistics.")
@add_options(METHOD_OPTIONS, METHOD_HELP)
@click.option("--param", "params", multiple=True, help="Any method parameter KEY=VALUE (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bars or summary.")
def merge(config_file, task, domain, method, no_cache, params, quiet, **opts) -> None:
    """Merge TASK and DOMAIN adapters (see `tada methods` for every method's parameters)."""
    cfg = load_yaml_config(config_file) if config_file else {}
    method_params = dict(cfg.pop("parameters", None) or {})
    for key, value in given(opts, METHOD_OPTIONS).items():
        method_params[key] = {**method_params.get(key, {}), **value} if isinstance(value, dict) else value
    method_params.update(pairs(params, "--param"))
    merged = {**cfg, **given(opts, MERGE_OPTIONS),
              **{k: v for k, v in {"task": task, "domain": domain, "method": method}.items() if v is not None}}
    for required in ("task", "domain", "out"):
        if not merged.get(required):
            raise TadaError(f"`{required}` is required (on the command line or in --config)")
    result = api.merge(merged.pop("task"), merged.pop("domain"), params=method_params, use_cache=not no_cache,
                       progress=not quiet, **merged)
    if not quiet:
        print_summary(result)
    click.echo(f"wrote {result.out}")
    if merged.get("push_to_hub"):
        click.echo(f"pushed to {merged['push_to_hub']}")
