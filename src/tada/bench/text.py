"""``tada bench``: the whole grid (base, task only, domain only, every merge method) on every
dataset, cached on disk so an interrupted run resumes and a new method computes only itself.

Layout of ``out/``: ``adapters/<key>/`` (merged adapters), ``results/<key>/<dataset>.<scoring>.json``
(+ ``.jsonl`` per-example predictions), ``table.md``, ``table.csv``, ``results.json``.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .._util import PROGRESS_DELAY_S
from ..errors import TadaError
from ..io.files import load_yaml_mapping, read_json_object
from .grid import BENCH_MERGE_OPTIONS, Grid
from ..methods import bench_methods, get_method, register_row_label, REGISTRY, row_label
from ..models import load_model, load_tokenizer, resolve_base
from ..options import build, closest, MergeOptions
from ..eval.records import cell_record, text_cell_key, write_predictions
from ..eval.datasets import DATASETS, declares_format, load_dataset_by_name
from ..eval import mcq
from ..io.hub import hub_reachable
from ..adapters import read_prompt_format
from ..api.evaluating import prompt_choice


@dataclass
class BenchConfig:
    """Everything a benchmark run needs. Paths are relative to the config file's folder."""

    name: str
    base: str
    task: str
    datasets: list[str]
    domain: str | None = None
    # K domain adapters (SPEC §6b) instead of ``domain``: ``{name, adapter, probe}`` each; rows
    # ``domain-<name>`` evaluate each alone, every method merges all K with the task adapter.
    domains: list[dict] = field(default_factory=list)
    # Extra rows: ``{key, label, adapter}`` (an adapter as it is) or ``{key, label, method, domain,
    # domain_probe, params}`` (a two-adapter merge of the task adapter with ``domain``).
    # A row with ``method`` and no ``domain`` merges the config's domain adapter(s), K-way too
    # (e.g. the natural choice ``linear`` with ``params: {weights: [0.5, 0.25, 0.25]}``).
    extra_rows: list[dict] = field(default_factory=list)
    # Rows tuned on validation by ``tada tune`` (issue #25): the path of its ``leaderboard.json``;
    # each method there adds the row ``<method>-tuned`` ("<label> (tuned)"), merged with the best
    # setting the tune found, and scored on the test sets once.
    tuned: str | None = None
    # Only these rows of the grid (run keys: ``task``, ``tada``, ``tada-tuned``, ``ties-d0.5``…);
    # empty: every row. For replications that re-score a few rows (e.g. other training seeds).
    rows: list[str] = field(default_factory=list)
    gguf_file: str | None = None
    revision: str | None = None
    domain_probe: str | None = None
    general_probe: str | None = None
    domain_stats: str | None = None
    general_stats: str | None = None
    methods: list[str] = field(default_factory=lambda: list(bench_methods()))
    # The grid's axes: parameter → values; a method runs every combination of the axes it declares
    # (``register(..., sweeps=(...))``), e.g. TIES the densities, DARE densities × seeds. A new axis
    # is a new key here and in a method's ``sweeps`` (``densities``/``dare_seeds``: older spellings).
    sweeps: dict[str, list] = field(default_factory=lambda: {"density": [0.3, 0.5, 0.7], "seed": [0, 1, 2]})
    # "letter", "cloze", "format" (the last only on datasets that declare an answer format; the
    # other datasets get no format cell)
    scoring: list[str] = field(default_factory=lambda: ["letter"])
    shots: int = 3
    limit: int | None = 500
    seed: int = 0
    batch_size: int = 8
    # the prompt: None follows the task adapter's tada_prompt.json (raw without one), as `tada eval`
    # and `tada tune` do; true/false asks for the chat template or the raw prompt
    chat_template: bool | None = None
    validation: dict[str, str] = field(default_factory=dict)  # dataset → its validation dataset
    # Validation sets that pick the TIES/DARE density before any test set is scored: every density
    # is scored on them (first DARE seed, ``select_scoring``), the best mean wins, and only that
    # density (all seeds) is then evaluated on ``datasets``.
    select_on: list[str] = field(default_factory=list)
    select_scoring: str = "letter"
    limits: dict[str, int] = field(default_factory=dict)  # per-dataset override of ``limit``
    # For the results document (``report``, see tada.bench.results): texts whose perplexity shows
    # each adapter's own effect, training files for the leakage check, and the sets that ask
    # trained knowledge on purpose (their options are exempt from the check).
    report: str | None = None
    # Per-question outcomes behind the report's tables (gzip JSONL, committed beside the page):
    # ``scripts/recompute_results.py`` recomputes every cell and p-value of the page from them.
    records: str | None = None
    lm_texts: dict[str, str] = field(default_factory=dict)
    leakage_train: list[str] = field(default_factory=list)
    knowledge_sets: list[str] = field(default_factory=list)
    method_params: dict[str, dict] = field(default_factory=dict)
    # Options of every merge (tada.options.MergeOptions fields: probe_n, max_length, rank, max_rank,
    # dtype…; validated by its model); base, probes, out and device are the keys above.
    merge_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    model_dtype: str | None = None
    out: str = "runs/bench"

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> BenchConfig:
        data = with_sweeps(data, {"density": [0.3, 0.5, 0.7], "seed": [0, 1, 2]}, where)
        cfg = build_config(cls, data, where, ("name", "base", "task", "datasets"),
                           hint=" (give `task`/`domain` for a preset)")
        if isinstance(cfg.scoring, str):
            cfg.scoring = [cfg.scoring]
        check_merge_options(cfg.merge_options, where)
        if not cfg.domain and not cfg.domains:
            raise TadaError(f"{where}: missing domain (give `task`/`domain` for a preset)")
        if cfg.domain and cfg.domains:
            raise TadaError(f"{where}: give either domain (one domain adapter) or domains (a list), not both")
        for entry in cfg.domains:
            if set(entry) - {"name", "adapter", "probe"} or not {"name", "adapter"} <= set(entry):
                raise TadaError(f"{where}: each domains entry is {{name, adapter, probe}}, got {entry}")
        for row in cfg.extra_rows:
            if "key" not in row or "label" not in row or not ("adapter" in row or "method" in row):
                raise TadaError(f"{where}: each extra_rows entry needs key, label and adapter or method")
        for key, text in cfg.row_labels().items():
            register_row_label(key, text)
        if cfg.rows:
            grid(cfg)  # an unknown row is a one-line error now, not after the first cells ran
        return cfg

    def tuned_rows(self) -> list[dict]:
        """The leaderboard's methods (``tuned``): ``{method, params}`` each (the merge parameters
        of the best setting), in its order; one-line errors for a missing or malformed leaderboard."""
        if not self.tuned:
            return []
        board = read_json_object(self.tuned, "tune leaderboard")
        rows = board.get("methods")
        if not isinstance(rows, list) or not all(isinstance(r, dict) and {"method", "params"} <= set(r) for r in rows):
            raise TadaError(f"{self.tuned}: not a `tada tune` leaderboard.json (no methods with params)")
        bad = sorted({r["method"] for r in rows} - set(REGISTRY))
        if bad:
            raise TadaError(f"{self.tuned}: unknown method(s) {', '.join(bad)}")
        return [{"method": r["method"], "params": r["params"]} for r in rows]

    def row_labels(self) -> dict[str, str]:
        """Table names of the rows this configuration adds (each domain alone, extra rows, tuned rows)."""
        return {**{f"domain-{d['name']}": f"Domain only ({d['name']})" for d in self.domains},
                **{r["key"]: r["label"] for r in self.extra_rows},
                **{tuned_key(r["method"]): f"{row_label(r['method'])} (tuned)" for r in self.tuned_rows()}}

    def domain_inputs(self) -> tuple[str | list[str], dict[str, Any]]:
        """What every method row merges with the task adapter: the domain adapter (or the list of
        K), and the probe options of :func:`tada.merge`."""
        if not self.domains:
            assert self.domain is not None
            return self.domain, {k: getattr(self, k) for k in ("domain_probe", "general_probe", "domain_stats",
                                                               "general_stats")}
        probes = [d.get("probe") for d in self.domains]
        return [d["adapter"] for d in self.domains], {
            "domain_probe": probes if any(probes) else None, "general_probe": self.general_probe,
            "domain_stats": None, "general_stats": self.general_stats}


#: Older keys of the two first axes: ``densities: [...]`` is ``sweeps: {density: [...]}``.
SWEEP_ALIASES = {"densities": "density", "dare_seeds": "seed"}
#: Run-key suffix of an axis value (``ties-d0.5``, ``dare_ties-d0.5-s1``); other axes use their name.
SWEEP_SUFFIX = {"density": "d", "seed": "s"}


def with_sweeps(data: dict, defaults: dict[str, list], where: str) -> dict:
    """``data`` with ``sweeps`` completed: the defaults, the older ``densities``/``dare_seeds``
    keys folded in, then the given ``sweeps`` (each a list of values)."""
    data = dict(data)
    sweeps = {k: list(v) for k, v in defaults.items()}
    for old, axis in SWEEP_ALIASES.items():
        if old in data:
            sweeps[axis] = data.pop(old)
    given = data.get("sweeps") or {}
    if not isinstance(given, dict) or not all(isinstance(v, list) and v for v in given.values()):
        raise TadaError(f"{where}: sweeps must map a parameter to a non-empty list of values, e.g. "
                        "{density: [0.3, 0.5]}")
    data["sweeps"] = {**sweeps, **given}
    return data


def check_merge_options(options: dict, where: str) -> None:
    """A bench's ``merge_options``: MergeOptions fields (checked by the options model, with its
    bounds and "did you mean"), only those a bench does not set itself."""
    if not isinstance(options, dict):
        raise TadaError(f"{where}: merge_options must be a mapping of tada merge options")
    own = sorted(set(options) - set(BENCH_MERGE_OPTIONS))
    known = {f.name for f in dataclasses.fields(MergeOptions)}
    if own and own[0] in known:
        raise TadaError(f"{where}: merge_options.{own[0]} is set by the bench itself; allowed: "
                        f"{', '.join(BENCH_MERGE_OPTIONS)}")
    build(MergeOptions, options, f"{where}: merge_options")


def build_config(cls, data: dict, where: str, required: tuple[str, ...], hint: str = ""):
    """``cls(**data)`` for a bench-config dataclass: unknown keys, missing ``required`` keys and
    unknown ``methods`` are one-line errors naming ``where``."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TadaError(f"{where}: unknown key(s) {', '.join(unknown)}{closest(unknown[0], known)}")
    missing = [k for k in required if not data.get(k)]
    if missing:
        raise TadaError(f"{where}: missing {', '.join(missing)}{hint}")
    cfg = cls(**data)
    bad = sorted(set(cfg.methods) - set(REGISTRY))
    if bad:
        raise TadaError(f"{where}: unknown method(s) {', '.join(bad)}{closest(bad[0], REGISTRY)}")
    return cfg


#: Row key (and group) of a method's tuned row.
TUNED_SUFFIX = "-tuned"


def tuned_key(method: str) -> str:
    return method + TUNED_SUFFIX


def load_bench_config(path: str) -> BenchConfig:
    data = load_yaml_mapping(path, "bench config", ("task", "domain", "domain_probe", "general_probe",
                                                    "domain_stats", "general_stats", "base", "tuned"))
    return BenchConfig.from_dict(data, str(path))


# ---- the grid -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One row configuration: what to evaluate (base, an input adapter, or a merge)."""

    key: str
    group: str  # the Table-3 row it belongs to (method name, or base/task/domain)
    method: str | None = None
    params: tuple = ()  # sorted (name, value) pairs; list values as tuples (hashable)

    @property
    def params_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.params}


def frozen_params(params: dict) -> tuple:
    """``params`` as a :class:`Run`'s sorted pairs (lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def grid(cfg: BenchConfig, picked: dict[str, float] | None = None, *, first_seed_only: bool = False) -> list[Run]:
    """Every run of the benchmark; ``picked`` (method → density) replaces the density grid."""
    runs = [Run("base", "base"), Run("task", "task")]
    runs += [Run(f"domain-{d['name']}", f"domain-{d['name']}") for d in cfg.domains] or [Run("domain", "domain")]
    runs += [Run(r["key"], r["key"]) for r in cfg.extra_rows]
    for m in cfg.methods:
        extra = cfg.method_params.get(m, {})
        axes = [a for a in get_method(m).sweeps if a in cfg.sweeps]
        values = {a: list(cfg.sweeps[a]) for a in axes}
        if picked and m in picked and "density" in values:
            values["density"] = [picked[m]]
        if first_seed_only and "seed" in values:
            values["seed"] = values["seed"][:1]
        for combo in itertools.product(*(values[a] for a in axes)):
            params, key = dict(extra), m
            for axis, v in zip(axes, combo):
                params[axis] = v
                key += f"-{SWEEP_SUFFIX.get(axis, axis)}{v}"
            runs.append(Run(key, m, m, frozen_params(params)))
    runs += [Run(tuned_key(t["method"]), tuned_key(t["method"]), t["method"], frozen_params(t["params"]))
             for t in cfg.tuned_rows()]
    if not cfg.rows:
        return runs
    keys = [r.key for r in runs]
    unknown = [k for k in cfg.rows if k not in keys]
    if unknown:
        raise TadaError(f"rows: {unknown[0]!r} is not a row of this bench{closest(unknown[0], keys)} "
                        f"(rows: {', '.join(keys)})")
    return [r for r in runs if r.key in cfg.rows]


@contextmanager
def peft_applied(model, adapter: str | Path):
    """``model`` with the PEFT adapter folder ``adapter`` applied (unmerged) for the ``with``
    block, then removed again: PEFT's ``unload`` restores ``model`` itself, in place. The adapter's
    weights stay in the model's dtype (PEFT would upcast them to float32 beside a bfloat16 base:
    ~40% of a CPU forward, and not what a user deploys)."""
    from peft import PeftModel

    target = PeftModel.from_pretrained(model, str(adapter), autocast_adapter_dtype=False)
    target.eval()
    try:
        yield target
    finally:
        target.unload()


class Bench:
    """Runs (or resumes) a benchmark grid."""

    def __init__(self, cfg: BenchConfig, *, progress: bool = True):
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.out)
        self.grid = Grid(self.out, progress=progress)
        self._model = self._tok = None
        self._datasets: dict = {}
        self.picked: dict[str, float] = {}  # TIES/DARE density per method, set by run()

    @cached_property
    def chat_template(self) -> bool:
        """Whether every cell wraps its prompts in the chat template: ``chat_template`` when the
        configuration gives it (a warning when the task adapter records the other format), else
        the task adapter's ``tada_prompt.json`` (raw without one)."""
        task = Path(self.cfg.task)
        return prompt_choice(self.cfg.chat_template, read_prompt_format(task) if task.is_dir() else None)[0]

    # ---- pieces ------------------------------------------------------------------------------
    def base_spec(self):
        return resolve_base(self.cfg.base, self.cfg.gguf_file, self.cfg.revision)

    def model(self):
        if self._model is None:
            spec = self.base_spec()
            self._model = load_model(spec, device=self.cfg.device, dtype=self.cfg.model_dtype)
            self._tok = load_tokenizer(spec)
        return self._model, self._tok

    @contextmanager
    def adapted(self, adapter: str | None):
        """The base model with ``adapter`` applied for the ``with`` block (:func:`peft_applied`), or
        the bare base for ``None``."""
        model, _ = self.model()
        if adapter is None:
            yield model
            return
        with peft_applied(model, adapter) as target:
            yield target

    def dataset(self, name: str):
        if name not in self._datasets:
            self._datasets[name] = load_dataset_by_name(name, split_seed=self.cfg.seed)
        return self._datasets[name]

    def adapter_for(self, run: Run) -> str | None:
        """The adapter folder a run evaluates (merging it first if it is not cached)."""
        if run.key == "base":
            return None
        if run.key in ("task", "domain"):
            return getattr(self.cfg, run.key)
        alone = {f"domain-{d['name']}": d["adapter"] for d in self.cfg.domains}
        if run.key in alone:
            return alone[run.key]
        spec = self.base_spec()
        extra = next((r for r in self.cfg.extra_rows if r["key"] == run.key), None)
        if extra is not None:
            if "adapter" in extra:
                return extra["adapter"]
            if "domain" not in extra:  # the config's domain adapter(s), K-way too
                domain, probes = self.cfg.domain_inputs()
                return self.grid.merged(run.key, self.cfg.task, domain, extra["method"], extra.get("params"),
                                        base_name=spec.name, probes=probes, base=spec.path, gguf_file=spec.gguf_file,
                                        revision=spec.revision, device=self.cfg.device, **self.cfg.merge_options)
            return self.grid.merged(run.key, self.cfg.task, extra["domain"], extra["method"], extra.get("params"),
                                    base_name=spec.name,
                                    probes={"domain_probe": extra.get("domain_probe"),
                                            "general_probe": self.cfg.general_probe},
                                    base=spec.path, gguf_file=spec.gguf_file, revision=spec.revision,
                                    **self.cfg.merge_options,
                                    device=self.cfg.device)
        assert run.method is not None, "a merge row names its method"
        domain, probes = self.cfg.domain_inputs()
        return self.grid.merged(run.key, self.cfg.task, domain, run.method, run.params_dict, base_name=spec.name,
                                probes=probes, base=spec.path, gguf_file=spec.gguf_file, revision=spec.revision,
                                device=self.cfg.device, **self.cfg.merge_options)

    def result_path(self, run: Run, dataset: str, scoring: str) -> Path:
        return self.grid.result_path(run.key, dataset, f"{scoring}.json")

    def scores(self, dataset: str, scoring: str) -> bool:
        """Whether the cell (``dataset``, ``scoring``) exists: ``format`` scoring applies only to a
        dataset that declares an answer format; the other scorings to every dataset."""
        if scoring != "format":
            return True

        return declares_format(self.dataset(dataset))

    def limit_for(self, dataset: str) -> int | None:
        return self.cfg.limits.get(dataset, self.cfg.limit)

    def eval_key(self, run: Run, dataset: str, scoring: str, adapter: str | None) -> dict:
        return text_cell_key(base=self.base_spec().name, adapter=adapter, dataset=dataset, scoring=scoring,
                             shots=self.cfg.shots, seed=self.cfg.seed, limit=self.limit_for(dataset),
                             chat_template=self.chat_template, model_dtype=self.cfg.model_dtype)

    def evaluate(self, run: Run, dataset: str, scoring: str) -> dict:
        """One cell: cached on disk; recomputed only when its inputs changed."""
        path = self.result_path(run, dataset, scoring)
        adapter = self.adapter_for(run)
        key = self.eval_key(run, dataset, scoring, adapter)
        cached = self.grid.cached(path, key)
        if cached is not None:
            return cached

        tok = self.model()[1]
        ds = self.dataset(dataset)
        started = time.perf_counter()
        with self.adapted(adapter) as target:
            res = mcq.evaluate(target, tok, ds, scoring=scoring, shots=self.cfg.shots, seed=self.cfg.seed,
                           limit=self.limit_for(dataset), batch_size=self.cfg.batch_size,
                           chat_template=self.chat_template, progress=self.progress)
        write_predictions(path.with_suffix(".jsonl"), res.predictions)
        record = cell_record(key, res, seconds=time.perf_counter() - started, run=run.key, group=run.group,
                             params=run.params_dict, dataset=dataset, dataset_meta=ds.meta, scoring=scoring)
        return self.grid.save(path, record)

    # ---- the whole grid ------------------------------------------------------------------------
    def select_densities(self) -> tuple[dict[str, float], list[dict]]:
        """Stage 1 (only with ``select_on``): score every density of TIES/DARE on the validation
        sets and keep, per method, the density with the best mean (the lowest on a tie)."""
        from tqdm.auto import tqdm

        methods = [m for m in self.cfg.methods if "density" in get_method(m).sweeps]
        if not self.cfg.select_on or not methods:
            return {}, []
        runs = [r for r in grid(self.cfg, first_seed_only=True) if r.group in methods]
        cells = [(r, d) for r in runs for d in self.cfg.select_on]
        records = [self.evaluate(r, d, self.cfg.select_scoring)
                   for r, d in tqdm(cells, desc=f"{self.cfg.name}: density on validation", unit="cell",
                                    disable=not self.progress, delay=PROGRESS_DELAY_S)]
        picked = {}
        for m in methods:
            scores: dict[float, list[float]] = {}
            for rec in records:
                if rec["group"] == m:
                    scores.setdefault(rec["params"]["density"], []).append(rec["accuracy"])
            picked[m] = max(sorted(scores), key=lambda d: sum(scores[d]) / len(scores[d]))
        return picked, records

    def run(self) -> list[dict]:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        picked, selection = self.select_densities()
        self.picked = picked
        cells = [(r, d, s) for r in grid(self.cfg, picked or None)
                 for d in self.cfg.datasets + sorted(set(self.cfg.validation.values()))
                 for s in self.cfg.scoring if self.scores(d, s)]
        records = []
        for run, dataset, scoring in tqdm(cells, desc=f"bench {self.cfg.name}", unit="cell",
                                          disable=not self.progress, delay=PROGRESS_DELAY_S):
            records.append(self.evaluate(run, dataset, scoring))
        self.grid.finish(asdict(self.cfg), records, selection={"picked": picked, "records": selection},
                         seconds=round(time.perf_counter() - start, 1))
        return records


def dry_run(cfg: BenchConfig) -> list[str]:
    """Check what a run needs without running anything; return the problems found (empty = ok)."""
    problems = []
    sources = [("task", cfg.task), *((("domain", cfg.domain),) if cfg.domain else ()),
               *((f"domain {d['name']}", d["adapter"]) for d in cfg.domains),
               *((r["key"], r["adapter"] if "adapter" in r else r["domain"]) for r in cfg.extra_rows
                 if "adapter" in r or "domain" in r)]
    for role, src in sources:
        if not Path(src).is_dir():
            if src.count("/") == 1 and not src.startswith((".", "/")):
                if not hub_reachable(src):
                    problems.append(f"{role} adapter {src}: not a local folder and the hub cannot be reached")
            else:
                problems.append(f"{role} adapter {src}: not found")
    if not Path(cfg.base).exists() and not hub_reachable(cfg.base):
        problems.append(f"base model {cfg.base}: not local and the hub cannot be reached")
    for probe in (cfg.domain_probe, cfg.general_probe, cfg.domain_stats, cfg.general_stats,
                  *(d.get("probe") for d in cfg.domains), *(r.get("domain_probe") for r in cfg.extra_rows)):
        if probe and not Path(probe).is_file():
            problems.append(f"probe file {probe}: not found")
    has_domain_probes = all(d.get("probe") for d in cfg.domains) if cfg.domains else (cfg.domain_probe or cfg.domain_stats)
    if "tada" in cfg.methods and not (has_domain_probes and (cfg.general_probe or cfg.general_stats)):
        problems.append("method tada needs domain and general probes (or stats)")

    for name in cfg.datasets + list(cfg.validation.values()) + list(cfg.select_on):
        if name not in DATASETS and not name.endswith(".jsonl") and name.split(":")[0] not in DATASETS:
            problems.append(f"dataset {name}: unknown")
        elif name.endswith(".jsonl") and not Path(name).is_file():
            problems.append(f"dataset {name}: file not found")
        elif name in DATASETS and (hub_id := DATASETS[name].hub_id) and not hub_reachable(hub_id, "dataset"):
            problems.append(f"dataset {name} ({hub_id}): the hub cannot be reached")
    return problems
