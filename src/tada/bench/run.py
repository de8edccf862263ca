"""What ``tada bench`` and ``tada analyze`` do, end to end, for the CLI and for notebooks: read a
configuration (a YAML file or a preset, with overrides), run the grid or the analysis, write the
tables and documents, and return what a front end prints.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters import load_adapter
from ..analysis import probe_size as probe_size_analysis
from ..analysis import seeds as seeds_analysis
from ..analysis import timing as timing_analysis
from . import variants as variants_analysis
from ..analysis.plots import line_plot
from ..errors import TadaError
from ..io.atomic import write_text
from . import results as reproduce, tables
from . import text as text_bench
from ..eval.lm import read_lines
from .config import preset as get_preset
from ..io.files import load_yaml_mapping
from ..models import load_model, load_tokenizer, resolve_base
from ..methods import row_label
from ..report import jsonable
from . import vision as vision_bench

#: Keys of a bench YAML that name files (resolved relative to the YAML's folder).
BENCH_PATH_KEYS = ("task", "domain", "domain_probe", "general_probe", "domain_stats", "general_stats", "base")


def bench_data(config_file: str | None, preset: str | None, overrides: dict) -> tuple[dict, str]:
    """The raw configuration of ``tada bench`` / ``tada analyze``: a YAML file or a preset, with
    the ``overrides`` that were given (not None) replacing its keys (``datasets``/``scoring``:
    comma-separated lists). Returns (configuration, where it came from)."""

    if bool(config_file) == bool(preset):
        raise TadaError("give exactly one of `config` or `preset`")
    if config_file:
        data = load_yaml_mapping(config_file, "bench config", BENCH_PATH_KEYS)
        if data.get("modality", "text") == "text":
            data = dict(vars(text_bench.load_bench_config(config_file)))
    else:
        assert preset is not None
        data = get_preset(preset)
    for key, value in overrides.items():
        if value is not None:
            data[key] = [v for v in value.split(",") if v] if key in ("datasets", "scoring") else value
    return data, config_file or f"preset {preset}"


def text_bench_config(config_file: str | None, preset: str | None, overrides: dict):
    """A language :class:`tada.bench.text.BenchConfig` (``tada analyze``, ``tada bench`` on text)."""

    data, where = bench_data(config_file, preset, overrides)
    if data.get("modality", "text") != "text":
        raise TadaError(f"{where} is a {data['modality']} benchmark; this command takes a language one")
    return text_bench.BenchConfig.from_dict(data, where)


def any_bench_config(config_file: str | None, preset: str | None, overrides: dict):
    """A language or a vision benchmark configuration, whichever the source declares."""
    data, where = bench_data(config_file, preset, overrides)
    if data.get("modality", "text") == "vision":
        return vision_bench.VisionBenchConfig.from_dict(data, where)

    return text_bench.BenchConfig.from_dict(data, where)


@dataclass
class BenchOutcome:
    """What a bench run leaves: ``problems`` (a dry run: what cannot be reached), the ``table``
    (Markdown, vision), and the files written."""

    problems: list[str] = field(default_factory=list)
    table: str = ""
    written: list[str] = field(default_factory=list)
    dry_run: bool = False


def run_bench(cfg, *, command: str, dry_run: bool = False, progress: bool = True, show: bool = True) -> BenchOutcome:
    """Run (or check, ``dry_run``) a benchmark configuration and write its tables and report."""
    if getattr(cfg, "modality", "text") == "vision":
        return _run_vision_bench(cfg, command=command, dry_run=dry_run, progress=progress)

    if dry_run:
        return BenchOutcome(problems=text_bench.dry_run(cfg), dry_run=True)
    started = time.perf_counter()
    bench = text_bench.Bench(cfg, progress=progress)
    records = bench.run()
    tables.write_tables(records, cfg, show=show, picked=bench.picked)
    outcome = BenchOutcome(written=[f"{cfg.out}/table.*.md, .csv, .json and results.json"])
    if cfg.report:
        outcome.written.append(str(reproduce.write_results(bench, records, command=command,
                                                 wall_s=time.perf_counter() - started)))
    elif cfg.records:  # the per-question records without a results page (e.g. a replication)
        outcome.written.append(str(reproduce.export_records(bench, bench.picked, Path(cfg.records))))
    return outcome


def _run_vision_bench(cfg, *, command: str, dry_run: bool, progress: bool) -> BenchOutcome:
    if dry_run:
        return BenchOutcome(problems=vision_bench.dry_run(cfg), table=vision_bench.table4(cfg), dry_run=True)
    started = time.perf_counter()
    bench = vision_bench.VisionBench(cfg, progress=progress)
    records = bench.run()
    recipes = {d: bench.recipe(d) for d in cfg.datasets}
    labels = {d: bench.test_set(d).labels for d in cfg.datasets}
    written = vision_bench.write_outputs(cfg, records, recipes, command=command, wall_s=time.perf_counter() - started,
                            labels=labels)
    return BenchOutcome(table=vision_bench.table4(cfg, records, recipes), written=[str(p) for p in written])


# ---- the paper's analyses (Tables 5-8) ---------------------------------------------------------

def shown(path: str | None) -> str:
    """A path as a reader should see it: relative to the working directory when inside it."""
    if not path:
        return str(path)
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_analysis(out: Path, name: str, config: dict, rows: list[dict], markdown: str, title: str) -> list[Path]:
    """``NAME.md/.csv/.json`` and ``NAME.config.json`` (everything needed to re-run it) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{name}.md", f"# {title}\n\n{markdown}")
    write_text(out / f"{name}.json", json.dumps(jsonable({"config": config, "rows": rows}), indent=2))
    buf = io.StringIO()
    keys = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / f"{name}.csv", buf.getvalue())
    write_text(out / f"{name}.config.json", json.dumps(jsonable(config), indent=2))
    return [out / f"{name}.{ext}" for ext in ("md", "csv", "json")]


@dataclass
class Analysis:
    """An analysis's Markdown and the files it wrote."""

    markdown: str
    written: list[Path]


def probe_size(cfg, sizes: list[int], subsets: int, seed: int, out: Path, *, progress: bool = True) -> Analysis:
    """Table 5: mean over modules of std(α) across ``subsets`` random probe subsets of each size."""

    if subsets < 2 or not sizes or min(sizes) < 1:
        raise TadaError("need `subsets` >= 2 and `sizes` >= 1")
    if not (cfg.domain_probe and cfg.general_probe):
        raise TadaError("probe-size needs domain_probe and general_probe files in the configuration")
    spec = resolve_base(cfg.base, cfg.gguf_file, cfg.revision)
    model, tok = load_model(spec, device=cfg.device, dtype=cfg.model_dtype), load_tokenizer(spec)
    modules = sorted(load_adapter(cfg.task).module_names)
    sums = {w: probe_size_analysis.per_input_sums(model, tok, read_lines(p), modules) for w, p in
            (("domain", cfg.domain_probe), ("general", cfg.general_probe))}
    rows = probe_size_analysis.probe_size_table(cfg.task, cfg.domain, sums["domain"], sums["general"], sizes, subsets,
                                                seed, progress)
    md = ("| N | mean std(α) across subsets | mean α |\n|---|---|---|\n"
          + "".join(f"| {r['N']} | {r['mean_std_alpha']:.4f} | {r['mean_alpha']:.3f} |\n" for r in rows)
          + f"\n{subsets} subsets per N (seed {seed}); std over subsets per module (n − 1), then the mean over "
          f"{len(modules)} modules. Probes: {shown(cfg.domain_probe)}, {shown(cfg.general_probe)} "
          f"({len(sums['domain'])} and {len(sums['general'])} inputs); at the largest N a subset may be "
          "the whole file, and then every subset is the same.\n\n![probe size](probe_size.png)\n")
    files = write_analysis(out, "probe_size", {"bench": vars(cfg), "sizes": sizes, "subsets": subsets,
                                               "seed": seed}, rows, md, "Probe size (Table 5)")
    line_plot([r["N"] for r in rows], [r["mean_std_alpha"] for r in rows], out / "probe_size.png",
              xlabel="probe inputs N (log scale)", ylabel="mean std(α) across subsets", title=f"{cfg.name}: probe size")
    return Analysis(md, [*files, out / "probe_size.png"])


def timing(cfg, methods: list[str], out: Path, *, progress: bool = True) -> Analysis:
    """Table 8: wall time of each merge step for TaDA and the baselines, in one run."""
    rows = timing_analysis.time_methods(cfg.task, cfg.domain, methods, base=cfg.base, gguf_file=cfg.gguf_file,
                        domain_probe=cfg.domain_probe, general_probe=cfg.general_probe,
                        params=cfg.method_params, device=cfg.device, progress=progress)
    md = timing_analysis.to_markdown(rows)
    return Analysis(md, write_analysis(out, "timing", {"bench": vars(cfg), "methods": methods}, rows, md,
                                       "Timing (Table 8)"))


def variants(cfg, variant_list: list, out: Path, name: str, title: str, *, progress: bool = True) -> Analysis:
    """Tables 6 and 7: TaDA variants scored like the bench, one table (and bar chart) per metric."""
    cfg = dataclasses.replace(cfg, out=str(out / "runs"))
    vision = getattr(cfg, "modality", "text") == "vision"
    evaluate = variants_analysis.evaluate_vision_variants if vision else variants_analysis.evaluate_variants
    records = evaluate(cfg, variant_list, progress=progress)
    labels = {d: cfg.column(d) if vision else reproduce.label(d) for d in cfg.datasets}
    md, rows_all = "", []
    tables = [("top1", "accuracy", "top-1 accuracy")] if vision else \
        [(s, m, t) for s in cfg.scoring for m, t in
         ([("accuracy", "content accuracy, format scoring"), ("format_rate", "format compliance, format scoring")]
          if s == "format" else [("accuracy", f"{s} scoring")])]
    for scoring, metric, heading in tables:
        rows = variants_analysis.variant_rows(records, cfg.datasets, scoring, metric)
        rows_all += [{"scoring": scoring, "metric": metric, **r} for r in rows]
        stem = f"{name}.{scoring}" + ("" if metric == "accuracy" else f".{metric}")
        md += f"## {heading}\n\n" + variants_analysis.to_markdown(rows, cfg.datasets, labels)
        md += f"\n![{heading}]({stem}.png)\n\n"
        variants_analysis.bar_chart(rows, out / f"{stem}.png", f"{cfg.name}: {title} ({heading})")
    md += "Brackets: 95% Wilson interval. Every variant is a TaDA merge; " + "; ".join(
        f"{v.name}: {v.params or 'defaults'}" + (f", domain probe {shown(v.domain_probe)}" if v.domain_probe else "")
        for v in variant_list) + ".\n"
    files = write_analysis(out, name, {"bench": vars(cfg), "variants": [vars(v) for v in variant_list]},
                           rows_all, md, title)
    return Analysis(md, files)


def ablation(cfg, out: Path, *, progress: bool = True) -> Analysis:
    """Table 7: every TaDA ablation switch (SPEC §6)."""
    ablations = [variants_analysis.Variant(n, p) for n, p in variants_analysis.ABLATIONS.items()]
    return variants(cfg, ablations, out, "ablation", "Ablations (Table 7)",
                    progress=progress)


def probe_mismatch(cfg, mismatch: list[str], out: Path, *, progress: bool = True) -> Analysis:
    """Table 6: TaDA with the matched domain probe vs general text or another domain's probe."""
    variant_list = [variants_analysis.Variant("matched domain probe"),
                    variants_analysis.Variant("general text as domain probe", domain_probe=cfg.general_probe)]
    variant_list += [variants_analysis.Variant(f"mismatched probe {Path(p).name}", domain_probe=p) for p in mismatch]
    for v in variant_list:
        if v.domain_probe and not Path(v.domain_probe).is_file():
            raise TadaError(f"probe file not found: {v.domain_probe}")
    return variants(cfg, variant_list, out, "probe_mismatch", "Probe mismatch (Table 6)", progress=progress)



def _replicate_adapters(cfg, name: str, source: tuple[str, ...]) -> dict:
    """The bench fields a replicate's adapters replace: ``task`` and ``domain``, or ``task`` and each
    ``domains`` entry's ``adapter`` (in order); a wrong count is a one-line error."""
    task, *domains = source
    want = len(cfg.domains) or 1
    if len(domains) != want:
        names = ", ".join(d["name"] for d in cfg.domains) or "domain"
        raise TadaError(f"replicate {name!r}: give the task adapter and {want} domain adapter"
                        f"{'s' if want > 1 else ''} ({names}), got {len(domains)}")
    if cfg.domains:
        return {"task": task, "domains": [{**entry, "adapter": a} for entry, a in zip(cfg.domains, domains)]}
    return {"task": task, "domain": domains[0]}


def replicate_records(cfg, name: str, source: str | tuple[str, ...], rows: list[str], out: Path, *,
                      progress: bool = True) -> list[dict]:
    """The per-question records of one replicate: ``source`` is a records file a bench already
    wrote (e.g. the published page's), or the adapters that the bench ``cfg`` scores on its
    datasets, ``rows`` only, in its own cache folder ``<cfg.out>-<name>``: (task, domain), or with
    ``cfg.domains`` (task, one adapter per entry in its order; names and probes stay the entries').
    Its records are written to ``out/records-<name>.jsonl.gz`` (committed beside the analysis, like
    a page's)."""
    if isinstance(source, str):
        return seeds_analysis.read_records(source)
    slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-") or "replicate"
    rcfg = dataclasses.replace(cfg, **_replicate_adapters(cfg, name, source), rows=list(rows), report=None,
                               records=None, out=f"{cfg.out}-{slug}")  # the rows: checked by seed_replication
    bench = text_bench.Bench(rcfg, progress=progress)
    bench.run()
    path = reproduce.export_records(bench, bench.picked, out / f"records-{slug}.jsonl.gz")
    return seeds_analysis.read_records(path)


def seed_replication(cfg, replicates: list[tuple[str, str | tuple[str, ...]]], rows: list[str],
                     compare: list[tuple[str, str]], out: Path, *, measure: str = "joint",
                     report: str | None = None, command: str = "", progress: bool = True) -> Analysis:
    """The same ``rows`` of the bench ``cfg`` on several adapter sets (e.g. training seeds): per row
    and set the mean ± sd over replicates, and the ``compare`` pairs tested on ``measure`` pooled
    over replicates (stratified exact McNemar, Holm over the family; tada.analysis.seeds)."""
    if len(replicates) < 2:
        raise TadaError("give at least two replicates (the published pair's records and a retrained pair)")
    if not rows:
        raise TadaError("give the rows to replicate (e.g. task,tada,tada-tuned)")
    missing = sorted({r for pair in compare for r in pair} - set(rows))
    if missing:
        raise TadaError(f"compared row {missing[0]!r} is not among the replicated rows ({', '.join(rows)})")
    # the rows exist in this bench (one-line error before anything runs); registers their labels
    text_bench.BenchConfig.from_dict(vars(dataclasses.replace(cfg, rows=list(rows))), "seed replication")
    for name, source in replicates:  # every replicate's adapter count, before anything is scored
        if not isinstance(source, str):
            _replicate_adapters(cfg, name, source)
    out.mkdir(parents=True, exist_ok=True)
    data = {name: replicate_records(cfg, name, source, rows, out, progress=progress) for name, source in replicates}
    sets = [reproduce.label(d) for d in cfg.datasets]
    summary = seeds_analysis.summary_rows(data, rows, sets)
    tests = seeds_analysis.comparisons(data, compare, sets, measure)
    labels = {r: row_label(r) for r in rows}
    unit = {0: "seed pair", 2: "seed triple"}.get(len(cfg.domains), "seed set")  # the adapters retrained together
    md = seeds_analysis.to_markdown(summary, tests, labels, unit)
    sources = "; ".join(f"{n}: {s if isinstance(s, str) else ' + '.join(s)}" for n, s in replicates)
    md += (f"\nReplicates: {sources}. Sets: {', '.join(sets)} ({cfg.limit or 'all'} questions each, "
           f"{', '.join(cfg.scoring)} scoring).\n")
    files = write_analysis(out, "seeds", {"bench": vars(cfg), "replicates": replicates, "rows": rows,
                                          "compare": compare, "measure": measure},
                           [*summary, *tests], md, "Training-seed replication")
    if report:
        block = f"{reproduce.BEGIN}\n\nCommand: `{command}`\n\n{md}\n{reproduce.END}\n"
        files.append(reproduce.replace_generated_block(Path(report), block, "seed replication"))
    return Analysis(md, files)
