"""``tada merge``: flags generated from :class:`tada.options.MergeOptions` and every method's parameters."""
# Imports inside the command function are deferred on purpose (start-up time): `tada merge --help` and
# every argument error answer without importing torch; a merge without probes never imports
# transformers or peft.
from __future__ import annotations

import json

import click

from ..errors import TadaError
from ..config import load_merge_config
from ..options import MergeOptions, options_of
from .app import cli
from .options import add_options, given, method_options, pairs

MERGE_OPTIONS = options_of(MergeOptions)
METHOD_OPTIONS, METHOD_HELP = method_options()


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
@click.option("--gguf", "gguf_out", help="Also write the merge as this GGUF LoRA file for llama.cpp / Ollama "
                                         "(see `tada export-gguf`).")
def merge(config_file, task, domain, method, no_cache, params, show_tables, as_json, quiet, gguf_out,
          **opts) -> None:
    """Merge TASK and DOMAIN adapters (see `tada methods` for every method's parameters)."""
    cfg = load_merge_config(config_file) if config_file else {}
    method_params = dict(cfg.pop("parameters", None) or {})
    for key, value in given(opts, METHOD_OPTIONS).items():
        method_params[key] = {**method_params.get(key, {}), **value} if isinstance(value, dict) else value
    method_params.update(pairs(params, "--param"))
    merged = {**cfg, **given(opts, MERGE_OPTIONS),
              **{k: v for k, v in {"task": task, "method": method}.items() if v is not None},
              **({"domain": domain[0] if len(domain) == 1 else list(domain)} if domain else {})}
    for required in ("task", "domain", "out"):
        if not merged.get(required):
            raise TadaError(f"`{required}` is required (on the command line or in --config)")
    if gguf_out and not str(gguf_out).endswith(".gguf"):
        raise TadaError(f"--gguf {gguf_out}: the file name must end in .gguf")
    from ..api.checks import check_merge_arguments

    options = {k: v for k, v in merged.items() if k not in ("task", "domain", "method")}
    check_merge_arguments(merged.get("task"), merged.get("domain"), merged.get("method"), method_params, options)
    from ..api.merging import merge as run_merge  # torch, and transformers only where probes must run
    from ..report.summary import print_summary

    result = run_merge(merged.pop("task"), merged.pop("domain"), params=method_params, use_cache=not no_cache,
                       progress=not (quiet or as_json), **merged)
    if gguf_out and result.out:  # `out` is required above
        from ..gguf_lora import export_gguf_lora, gguf_base_of

        export_gguf_lora(result.out, gguf_out, base=gguf_base_of(merged.get("base")))
    if as_json:
        rep = result.report
        click.echo(json.dumps({"out": result.out, "method": rep["method"], "params": rep["params"],
                               "calibration": rep.get("calibration"), "summary": rep["summary"],
                               "warnings": rep["warnings"], **({"gguf": gguf_out} if gguf_out else {})}))
        return
    if not quiet:
        print_summary(result, tables=show_tables)
    click.echo(f"wrote {result.out}")
    if gguf_out:
        click.echo(f"wrote {gguf_out} (llama.cpp: --lora {gguf_out}; Ollama Modelfile: ADAPTER {gguf_out})")
    if merged.get("push_to_hub"):
        click.echo(f"pushed to {merged['push_to_hub']}")
