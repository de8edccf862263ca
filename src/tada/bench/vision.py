"""``tada bench`` for ViT-family bases: the paper's Table 4 (top-1 of base, task only, domain only and
every merge method on every image set).

Per column one head recipe for every row (SPEC §9): the task adapter's ``modules_to_save`` head
when its ``labels.json`` names the set's classes, put on top of each row's backbone (the base
and the domain-only rows too); otherwise a logistic-regression probe fitted on each row's frozen
features of the set's train split. Image probes (``domain_probe``/``general_probe``: folders or
named sets) are run once through the base and saved as statistics files; the merges read them.

Layout of ``out/``: ``probes/``, ``adapters/<method>/``, ``results/<row>/<set>.json`` (cached
cells, keyed by their inputs, so an interrupted run resumes), ``table.md``, ``table.csv``,
``results.json``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._util import PROGRESS_DELAY_S
from ..io.atomic import write_json
from ..adapters import load_adapter
from ..errors import TadaError
from .results import BEGIN, END, replace_generated_block
from .text import build_config, check_merge_options
from ..io.hub import hub_reachable
from ..eval.stats import paired
from .grid import Grid
from ..methods import bench_methods, get_method, row_label
from ..eval.records import adapter_sha256, cell_record
from ..vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
from ..vision.evaluate import probe_train_set, choose_head, head_top1, linear_probe_top1, load_evaluated
from ..vision.hub_image_sets import HUB_IMAGE_SETS
from ..vision.images import sample
from ..vision.probes import extract_image_probes
from ..vision.sources import load_image_set, LOADERS
from ..vision.train import read_labels


@dataclass
class VisionBenchConfig:
    """A vision benchmark. ``datasets``: test sets (named sets, e.g. ``cifar100``, or folders);
    ``train_sets``: a set's linear-probe train images where not its named ``:train`` split;
    ``columns``: short column titles."""

    name: str
    base: str
    datasets: list[str]
    task: str | None = None
    domain: str | None = None
    modality: str = "vision"
    domain_probe: str | None = None
    general_probe: str | None = None
    train_sets: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: list(bench_methods()))
    method_params: dict[str, dict] = field(default_factory=dict)
    merge_options: dict[str, Any] = field(default_factory=dict)  # as the language bench's (MergeOptions fields)
    probe_n: int = 32
    seed: int = 42
    limit: int = 500
    batch_size: int = 32
    device: str = "cpu"
    model_dtype: str | None = None
    out: str = "runs/vision-bench"
    report: str | None = None

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> VisionBenchConfig:
        cfg = build_config(cls, data, where, ("name", "base", "datasets"))
        check_merge_options(cfg.merge_options, where)
        return cfg

    def rows(self) -> list[str]:
        return ["base", "task", "domain", *self.methods]

    def column(self, dataset: str) -> str:
        return self.columns.get(dataset, dataset)


class VisionBench:
    """Runs (or resumes) a vision benchmark."""

    def __init__(self, cfg: VisionBenchConfig, *, progress: bool = True):
        task, domain = cfg.task, cfg.domain
        if not (task and domain):
            raise TadaError(f"{cfg.name}: give the task and domain adapters (`task`/`domain`)")
        self.cfg, self.progress = cfg, progress
        self.task, self.domain = task, domain
        self.out = Path(cfg.out)
        self.grid = Grid(self.out, progress=progress)
        self.base = resolve_vision_base(cfg.base)
        self._tests: dict = {}
        self._trains: dict = {}

    # ---- inputs -------------------------------------------------------------------------------
    def test_set(self, dataset: str):
        if dataset not in self._tests:
            self._tests[dataset] = sample(load_image_set(dataset), self.cfg.limit, self.cfg.seed)
        return self._tests[dataset]

    def train_set(self, dataset: str):
        """The linear probe's train images: ``train_sets[dataset]``, else the set's ``:train`` split."""
        if dataset not in self._trains:
            self._trains[dataset] = probe_train_set(dataset, self.test_set(dataset), self.cfg.train_sets.get(dataset))
        return self._trains[dataset]

    def recipe(self, dataset: str) -> str:
        """``modules_to_save`` (the task adapter's head) or ``linear_probe`` for a column."""
        return choose_head(read_labels(self.task), self.test_set(dataset))

    def stats(self) -> dict[str, str]:
        """The domain and general probe statistics files (computed once through the base)."""
        modules = sorted(set(load_adapter(self.task).module_names) | set(load_adapter(self.domain).module_names))
        files = {}
        for which in ("domain", "general"):
            source = getattr(self.cfg, f"{which}_probe")
            if source is None:
                raise TadaError(f"method tada needs a {which} probe (image folder or named set): {which}_probe")
            path = self.out / "probes" / f"{which}.stats.safetensors"
            key = {"base": self.base, "source": source, "n": self.cfg.probe_n, "seed": self.cfg.seed,
                   "modules": modules}
            stamp = path.with_suffix(".key.json")
            if not (path.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == key):
                path.parent.mkdir(parents=True, exist_ok=True)
                extract_image_probes(self.base, source, modules=modules, n=self.cfg.probe_n, seed=self.cfg.seed,
                                     device=self.cfg.device, out=path, progress=self.progress)
                write_json(stamp, key)
            files[which] = str(path)
        return files

    def adapter_for(self, row: str, method: str | None = None, params: dict | None = None) -> str | None:
        """The adapter folder a row evaluates (merging it first when not cached). A merge row's
        method is its name, with ``cfg.method_params``; ``method``/``params`` override both (the
        ablation variants: ``row="variant-…"``, ``method="tada"``)."""
        if row == "base":
            return None
        if row in ("task", "domain") and method is None:
            return getattr(self.cfg, row)
        method = method or row
        params = self.cfg.method_params.get(row) if params is None else params
        stats = self.stats() if get_method(method).needs_probes else {}
        return self.grid.merged(row, self.task, self.domain, method, params, base_name=self.base,
                                probes={"domain_stats": stats.get("domain"), "general_stats": stats.get("general")},
                                **self.cfg.merge_options)

    # ---- cells --------------------------------------------------------------------------------
    def cell_key(self, row: str, dataset: str, adapter: str | None, recipe: str) -> dict:
        return {"base": self.base, "adapter_sha256": adapter_sha256(adapter),
                "head_sha256": adapter_sha256(self.task) if recipe == "modules_to_save" else None, "dataset": dataset,
                "train_set": self.cfg.train_sets.get(dataset), "recipe": recipe, "limit": self.cfg.limit,
                "seed": self.cfg.seed, "model_dtype": self.cfg.model_dtype or "float32"}

    def result_path(self, row: str, dataset: str) -> Path:
        return self.grid.result_path(row, dataset, "json")

    def row_records(self, row: str, method: str | None = None, params: dict | None = None) -> list[dict]:
        """Every dataset of one row: the model is loaded once, cached cells are reused."""
        adapter = self.adapter_for(row, method, params)
        todo, records = [], {}
        for dataset in self.cfg.datasets:
            recipe = self.recipe(dataset)
            key = self.cell_key(row, dataset, adapter, recipe)
            path = self.result_path(row, dataset)
            cached = self.grid.cached(path, key)
            if cached is not None:
                records[dataset] = cached
            else:
                todo.append((dataset, recipe, key, path))
        if todo:
            uses_head = any(recipe == "modules_to_save" for _, recipe, _, _ in todo)
            model = load_evaluated(self.base, adapter, head_from=self.task if uses_head else None,
                                   device=self.cfg.device,
                                   model_dtype=self.cfg.model_dtype)
            for dataset, recipe, key, path in todo:
                started = time.perf_counter()
                test = self.test_set(dataset)
                if recipe == "modules_to_save":
                    res = head_top1(model, test, self.cfg.batch_size)
                else:
                    res = linear_probe_top1(model.base_model, self.train_set(dataset), test, seed=self.cfg.seed,
                                            batch_size=self.cfg.batch_size)
                records[dataset] = self.grid.save(path, cell_record(
                    key, res, seconds=time.perf_counter() - started, row=row, dataset=dataset, recipe=recipe,
                    predictions=res.predictions))
        return [records[d] for d in self.cfg.datasets]

    def run(self) -> list[dict]:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        records = []
        for row in tqdm(self.cfg.rows(), desc=f"bench {self.cfg.name}", unit="row",
                        disable=not self.progress, delay=PROGRESS_DELAY_S):
            records += self.row_records(row)
        self.grid.finish(dataclasses.asdict(self.cfg), records,
                         recipes={d: self.recipe(d) for d in self.cfg.datasets},
                         seconds=round(time.perf_counter() - start, 1))
        return records


# ---- the table (Table 4 layout) ------------------------------------------------------------------

def table4(cfg: VisionBenchConfig, records: list[dict] | None = None, recipes: dict[str, str] | None = None) -> str:
    """Markdown: rows base/task/domain/methods × datasets + Ave., top-1 in %, best merge in bold.
    Without ``records`` (a dry run) every cell is "–"."""
    acc = {(r["row"], r["dataset"]): 100 * r["accuracy"] for r in records or []}
    cols = cfg.datasets
    merged = [m for m in cfg.methods]
    best = {d: max((acc[(m, d)] for m in merged if (m, d) in acc), default=None) for d in cols}

    def avg(row: str) -> float | None:
        vals = [acc[(row, d)] for d in cols if (row, d) in acc]
        return sum(vals) / len(vals) if len(vals) == len(cols) else None

    best_avg = max((a for a in map(avg, merged) if a is not None), default=None)
    lines = ["| Method | " + " | ".join(cfg.column(d) for d in cols) + " | Ave. |",
             "|---" * (len(cols) + 2) + "|"]
    for row in cfg.rows():
        cells = []
        for d in cols:
            v = acc.get((row, d))
            text = "–" if v is None else f"{v:.1f}"
            cells.append(f"**{text}**" if v is not None and row in merged and v == best[d] else text)
        a = avg(row)
        cells.append("–" if a is None else (f"**{a:.1f}**" if row in merged and a == best_avg else f"{a:.1f}"))
        lines.append(f"| {row_label(row)} | " + " | ".join(cells) + " |")
    n = {r["dataset"]: r["n"] for r in records or []}
    heads = []
    for d in cols:
        how = (recipes or {}).get(d, "")
        what = {"modules_to_save": "task adapter's head", "linear_probe": "linear probe"}.get(how, "head decided at run time")
        heads.append(f"{cfg.column(d)}: {what}" + (f", n={n[d]}" if d in n else ""))
    lines += ["", "Top-1 accuracy (%). Bold: best merge per column. " + "; ".join(heads) + "."]
    return "\n".join(lines) + "\n"


def paired_lines(cfg: VisionBenchConfig, records: list[dict], labels: dict[str, list[int]],
                 against: str = "tada") -> list[str]:
    """Markdown rows: ``against`` minus each other row, per column, in points, with the exact
    McNemar p-value on the same test images (question-by-question, as for the language tables)."""
    by = {(r["row"], r["dataset"]): r for r in records}

    def correct(row: str, dataset: str) -> dict[int, bool]:
        preds = by[(row, dataset)]["predictions"]
        return {i: p == y for i, (p, y) in enumerate(zip(preds, labels[dataset]))}

    lines = [f"| {row_label(against)} vs | " + " | ".join(cfg.column(d) for d in cfg.datasets) + " |",
             "|---" * (len(cfg.datasets) + 1) + "|"]
    for row in cfg.rows():
        if row == against:
            continue
        cells = []
        for d in cfg.datasets:
            res = paired(correct(against, d), correct(row, d))
            cells.append(f"{100 * res.diff:+.1f} (p={res.p:.2g})")
        lines.append(f"| {row_label(row)} | " + " | ".join(cells) + " |")
    return lines


def write_outputs(cfg: VisionBenchConfig, records: list[dict], recipes: dict[str, str], *, command: str,
                  wall_s: float, labels: dict[str, list[int]] | None = None) -> list[Path]:
    """``table.md``/``table.csv`` in ``out``, and the generated block of ``report`` (when set):
    the table, the 95% intervals and (with the test ``labels``) paired tests of TaDA vs each row."""
    out = Path(cfg.out)
    table = table4(cfg, records, recipes)
    (out / "table.md").write_text(table, encoding="utf-8")
    acc = {(r["row"], r["dataset"]): r for r in records}
    csv = ["row," + ",".join(cfg.datasets)]
    csv += [row + "," + ",".join(f"{acc[(row, d)]['accuracy']:.4f}" for d in cfg.datasets) for row in cfg.rows()]
    (out / "table.csv").write_text("\n".join(csv) + "\n", encoding="utf-8")
    written = [out / "table.md", out / "table.csv"]
    if cfg.report:
        ci = ["| Row | " + " | ".join(cfg.column(d) for d in cfg.datasets) + " |", "|---" * (len(cfg.datasets) + 1) + "|"]
        for row in cfg.rows():
            ci.append(f"| {row_label(row)} | " + " | ".join(
                "{:.3f} [{:.3f}, {:.3f}]".format(acc[(row, d)]["accuracy"], *acc[(row, d)]["ci"]) for d in cfg.datasets) + " |")
        cells_min = sum(r["seconds"] for r in records) / 60
        block = [BEGIN, "", f"Command: `{command}`: the evaluation cells took {cells_min:.1f} min on this machine "
                 f"(their own timings; this invocation {wall_s / 60:.1f} min wall, merges and cached cells included).",
                 "", table, "Accuracy with 95% Wilson intervals:", "", *ci]
        if labels and "tada" in cfg.methods:
            block += ["", "TaDA minus each row, in points, with the exact McNemar p-value on the same images:", "",
                      *paired_lines(cfg, records, labels)]
        path = replace_generated_block(Path(cfg.report), "\n".join(block + ["", END]), cfg.name)
        written.append(path)
    return written


# ---- dry run --------------------------------------------------------------------------------------

def _source_problem(source: str, what: str) -> str | None:
    """Why an image source cannot be reached (``None`` when it can)."""
    name = source.split(":")[0]
    if Path(source).exists() or name in LOADERS or name == "fashion-mnist-test":
        return None
    if name in HUB_IMAGE_SETS:
        hub_id = HUB_IMAGE_SETS[name].hub_id
        return None if hub_reachable(hub_id, "dataset") else f"{what} {source} ({hub_id}): the hub cannot be reached"
    return f"{what} {source}: not a folder or a named image set"


def dry_run(cfg: VisionBenchConfig) -> list[str]:
    """What a run needs, checked without running anything: the problems found (empty = ok)."""
    problems = []
    if cfg.base != EMBEDDED_VIT and not Path(cfg.base).exists() and not hub_reachable(cfg.base):
        problems.append(f"base model {cfg.base}: not local and the hub cannot be reached")
    for role in ("task", "domain"):
        src = getattr(cfg, role)
        if not src:
            problems.append(f"{role} adapter: not given (--{role} or '{role}:' in a config)")
        elif not Path(src).is_dir() and not (src.count("/") == 1 and hub_reachable(src)):
            problems.append(f"{role} adapter {src}: not found")
    if "tada" in cfg.methods:
        for which in ("domain", "general"):
            source = getattr(cfg, f"{which}_probe")
            problem = _source_problem(source, f"{which} probe") if source else f"method tada needs a {which}_probe"
            if problem:
                problems.append(problem)
    for dataset in cfg.datasets:
        problem = _source_problem(dataset, "dataset")
        if problem:
            problems.append(problem)
    return problems
