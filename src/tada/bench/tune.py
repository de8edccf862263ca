"""``tada tune``: every merge method given the same trial budget on the user's validation data.

One Optuna study per method (study name = the method) in one storage (default
``sqlite:///<out>/study.db``). Each method declares where it is searched next to its parameters
(``opt(..., search=...)``, :class:`tada.options.Search`); a ``weights`` field is searched as the
task's weight ``task_weight`` = w_T, the K domain adapters sharing 1 − w_T equally. The sampler
is a grid (``GridSampler``) when the declared space is finite and fits the budget, else TPE
seeded with ``seed``. The objective is declared before the first trial and stored in the study
(user attrs): the mean over the validation sets of the joint score (format scoring: in the format
**and** the right option) or of the accuracy (letter, cloze).

Trials share one loaded base model and probe statistics computed once per domain; each merge is
built in memory (:func:`tada.merge` with no ``out``), applied with PEFT for its scoring and
removed. With pruning, a trial first scores the first third of every set, reports it, and
successive halving (the same pruner for every method) stops it when it is not in the top half of
the trials scored so far.

A killed worker leaves its trial RUNNING; its heartbeats stop and the next worker marks it failed
and runs the setting again. Trials counted against the budget are the COMPLETE and PRUNED ones;
a trial asked past the budget (several workers racing) is marked failed before it scores
anything, and so is a grid point another worker is already running, so no setting is run twice.

Output: ``leaderboard.json``/``leaderboard.md`` (per method: best setting, its validation score
with a 95% Wilson interval, trials used, pruned), ``best/`` (the winning merge: PEFT adapter,
report and a model card naming the tuning) and, with ``write_all``, ``<method>/`` for every method.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..adapters import Adapter, load_adapter, read_prompt_format, write_adapter
from ..api.evaluating import prompt_choice
from ..api.merging import merge
from .._util import as_list
from ..errors import TadaError
from ..eval import mcq
from ..eval.datasets import declares_format, load_dataset_by_name
from ..io.atomic import write_json, write_text
from ..methods import REGISTRY, get_method, make_params
from ..models import default_base, load_model, load_tokenizer, resolve_base
from ..options import Search, TuneOptions, build, closest, options_of
from ..probes import ProbeStats, read_probe, stats_for_probe
from ..report import jsonable
from ..report.card import CARD_NAME, model_card
from .text import peft_applied

#: The derived knob of the methods that take ``weights``: the task's weight, the domains share the rest.
TASK_WEIGHT = "task_weight"
#: The fraction of each validation set scored before a trial may be pruned.
PRUNE_FRACTION = 1 / 3
#: Successive halving: keep the top 1/η of the trials at the subset rung.
REDUCTION_FACTOR = 2
#: Stale trial: no heartbeat for this many heartbeat intervals.
GRACE_HEARTBEATS = 3


class OverBudget(Exception):
    """A trial asked after the budget was reached (several workers): marked failed, scores nothing."""


class Duplicate(Exception):
    """A grid point another live trial already has: marked failed, scores nothing."""


# ---- search spaces ----------------------------------------------------------------------------

def declared_space(method: str) -> dict[str, Search]:
    """The search space a method declares on its parameters (``weights`` → ``task_weight``)."""
    space = {}
    for o in options_of(get_method(method).params):
        if o.search is not None:
            space[TASK_WEIGHT if o.name == "weights" else o.name] = o.search
    return space


def parse_search(value: Any, where: str) -> Search:
    """A ``search`` override value: a list (a grid of values) or ``"LO..HI"`` / ``"LO..HI:log"``."""
    try:
        if isinstance(value, (list, tuple)) and not (isinstance(value, tuple) and len(value) == 2):
            return Search.of(list(value))
        if isinstance(value, tuple):
            return Search.of(value)
        if isinstance(value, str) and ".." in value:
            text, log = (value[:-4], True) if value.endswith(":log") else (value, False)
            low, high = (float(x) for x in text.split(".."))
            return Search.of((low, high), log)
    except ValueError as exc:
        raise TadaError(f"`search` {where}: {exc}") from None
    raise TadaError(f"`search` {where}: give a list of values like [0.3,0.5] or a range like 0.2..0.8, got {value!r}")


def spaces_for(methods: list[str], overrides: dict) -> dict[str, dict[str, Search]]:
    """Each method's space, the ``METHOD.PARAM`` overrides applied (unknown names refused)."""
    spaces = {m: declared_space(m) for m in methods}
    for key, value in overrides.items():
        method, _, param = str(key).partition(".")
        if method not in spaces:
            raise TadaError(f"`search` {key}: {method!r} is not a tuned method{closest(method, spaces)}")
        known = [o.name for o in options_of(get_method(method).params)]
        known = [TASK_WEIGHT if n == "weights" else n for n in known]
        if param not in known:
            raise TadaError(f"`search` {key}: method {method} has no parameter {param!r}{closest(param, known)}; "
                            f"its parameters: {', '.join(known)}")
        spaces[method][param] = parse_search(value, str(key))
    for method, space in spaces.items():
        if not space:
            raise TadaError(f"method {method} declares no search space; give one with `search` {method}.PARAM=...")
    return spaces


def grid_size(space: dict[str, Search]) -> int | None:
    """The number of settings of a finite space (None: a range makes it infinite)."""
    if not all(s.finite for s in space.values()):
        return None
    return math.prod(len(s.values or ()) for s in space.values())


def sampler_name(space: dict[str, Search], budget: int) -> str:
    """``grid`` when the space is finite and fits the budget, else ``tpe``."""
    size = grid_size(space)
    return "grid" if size is not None and size <= budget else "tpe"


def make_sampler(space: dict[str, Search], budget: int, seed: int):
    import optuna

    if sampler_name(space, budget) == "grid":
        return optuna.samplers.GridSampler({k: list(s.values or ()) for k, s in space.items()}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def suggest(trial, space: dict[str, Search]) -> dict[str, Any]:
    """The trial's setting of every knob of ``space``."""
    out = {}
    for name, s in space.items():
        if s.values is not None:
            out[name] = trial.suggest_categorical(name, list(s.values))
        elif s.integer:
            out[name] = trial.suggest_int(name, int(s.low or 0), int(s.high or 0), log=s.log)
        else:
            out[name] = trial.suggest_float(name, float(s.low or 0), float(s.high or 0), log=s.log)
    return out


def method_params(setting: dict[str, Any], k: int) -> dict[str, Any]:
    """A setting of the knobs as the method's parameters: ``task_weight`` w becomes ``weights`` =
    (w, (1 − w)/k, …) for k domain adapters."""
    params = {n: v for n, v in setting.items() if n != TASK_WEIGHT}
    if TASK_WEIGHT in setting:
        w = float(setting[TASK_WEIGHT])
        params["weights"] = (w, *((1.0 - w) / k,) * k)
    return params


# ---- the tuner --------------------------------------------------------------------------------

@dataclass
class ValSet:
    """One validation set: the dataset and the questions scored (``head``: scored first when pruning)."""

    name: str
    dataset: Any
    questions: list
    head: int


def _listed(value: Any) -> list:
    """None as no item, else :func:`tada._util.as_list`."""
    return [] if value is None else as_list(value)


class Tuner:
    """The inputs, the loaded base model and the probe statistics that every trial shares."""

    def __init__(self, task: str | Adapter, domains: list[str | Adapter], o: TuneOptions):
        self.o = o
        if not o.out:
            raise TadaError("`out` is required (the folder of the study, the leaderboard and the winning adapter)")
        vals = _listed(o.val)
        if not vals:
            raise TadaError("`val` is required: one or more validation datasets (.jsonl or a registered name)")
        if not domains:
            raise TadaError("`domain` is required: one or more domain adapters")
        names = [m for item in _listed(o.methods) for m in str(item).split(",") if m] or sorted(REGISTRY)
        for m in names:
            get_method(m)  # one-line error naming the closest method
        self.methods = list(dict.fromkeys(names))
        self.task = task if isinstance(task, Adapter) else load_adapter(task)
        self.domains = [d if isinstance(d, Adapter) else load_adapter(d) for d in domains]
        self.k = len(self.domains)
        for m in self.methods:  # the default setting must fit the inputs (e.g. weights of length k + 1)
            make_params(get_method(m), None, n_inputs=self.k + 1)
        self.spaces = spaces_for(self.methods, dict(o.search))
        self.out = Path(o.out)
        self.storage_url = o.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"
        self.base_spec = resolve_base(o.base, o.gguf_file, o.revision) if o.base else \
            default_base([a.base_model for a in (self.task, *self.domains)])
        self.sets = [self._val_set(v) for v in vals]
        if o.scoring is None:
            self.scoring = "format" if all(declares_format(s.dataset) for s in self.sets) else "letter"
        else:
            self.scoring = o.scoring
        if self.scoring == "format":
            bad = [s.name for s in self.sets if not declares_format(s.dataset)]
            if bad:
                raise TadaError(f"validation set {bad[0]} declares no answer format; `scoring` format needs "
                                "'prompt' and 'format' on every question (use letter or cloze)")
        self.shots = o.shots if o.shots is not None else (0 if self.scoring == "format" else 3)
        self.outcome = "joint" if self.scoring == "format" else "correct"
        needs = [m for m in self.methods if get_method(m).needs_probes]
        self.probes = self._check_probes(needs)
        self._model = self._tok = None
        self._stats: dict[str, Any] | None = None

    # ---- inputs ----------------------------------------------------------------------------------
    def _val_set(self, name: str) -> ValSet:
        if str(name).endswith(".jsonl") and not Path(name).is_file():
            raise TadaError(f"validation set {name}: file not found")
        ds = load_dataset_by_name(str(name), split_seed=self.o.seed)
        questions = mcq.select(ds.test, self.o.limit, self.o.seed)
        if not questions:
            raise TadaError(f"validation set {name} has no questions")
        head = max(1, math.ceil(len(questions) * PRUNE_FRACTION)) if self.o.prune else len(questions)
        return ValSet(str(name), ds, questions, head)

    def _check_probes(self, needs: list[str]) -> dict[str, Any]:
        o = self.o
        probes = {"domain_probe": _listed(o.domain_probe), "domain_stats": _listed(o.domain_stats)}
        for key, values in probes.items():
            if values and len(values) != self.k:
                raise TadaError(f"{self.k} domain adapter(s) but {len(values)} `{key}` values: give one per domain "
                                "adapter, in the same order")
        if not needs:
            return probes
        if not (probes["domain_probe"] or probes["domain_stats"]) or not (o.general_probe or o.general_stats):
            raise TadaError(f"method {needs[0]} needs probes: `domain_probe` (or `domain_stats`) for every domain "
                            "adapter and `general_probe` (or `general_stats`); or leave it out of `methods`")
        for path in [*probes["domain_probe"], *probes["domain_stats"], o.general_probe, o.general_stats]:
            if path is not None and not isinstance(path, ProbeStats) and not Path(path).is_file():
                raise TadaError(f"probe file {path}: not found")
        return probes

    def model(self):
        """The base model and tokenizer, loaded once for every trial of every method."""
        if self._model is None:
            self._model = load_model(self.base_spec, device=self.o.device, dtype=self.o.model_dtype)
            self._model.eval()
            self._tok = load_tokenizer(self.base_spec)
        return self._model, self._tok

    def stats(self) -> dict[str, Any]:
        """``domain_stats``/``general_stats`` for :func:`tada.merge`: computed once per probe (on the
        bare base model, before any trial) and reused by every trial."""
        if self._stats is None:
            modules = sorted(set(self.task.module_names).union(*(d.module_names for d in self.domains)))

            def compute(probe, stats):
                if stats is not None:
                    return stats if isinstance(stats, ProbeStats) else ProbeStats.load(stats)
                probe_set = read_probe(probe)
                return stats_for_probe(probe_set, modules, base_name=self.base_spec.name, load_model=self.model,
                                       n=32, progress=False)[0]

            probes, stats = self.probes["domain_probe"], self.probes["domain_stats"]
            domain = [compute(p, None) for p in probes] if probes else [compute(None, s) for s in stats]
            general = compute(self.o.general_probe, self.o.general_stats)
            self._stats = {"domain_stats": domain if self.k > 1 else domain[0], "general_stats": general}
        return self._stats

    # ---- one trial ---------------------------------------------------------------------------------
    def build(self, method: str, setting: dict[str, Any], out: Path | None = None):
        """The merge of ``setting`` (in memory, or written to ``out``)."""
        spec = get_method(method)
        probes = self.stats() if spec.needs_probes else {}
        domain: Any = self.domains if self.k > 1 else self.domains[0]
        return merge(self.task, domain, method=method, params=method_params(setting, self.k), out=out,
                     force=out is not None, progress=False, base=self.o.base,
                     **probes)

    @contextmanager
    def applied(self, result):
        """The base model with the merged adapter applied (PEFT) for the ``with`` block, then removed."""
        model, _ = self.model()
        with tempfile.TemporaryDirectory(prefix=".trial-", dir=self.out) as tmp:
            folder = Path(tmp) / "adapter"
            write_adapter(folder, result.tensors, result.config)
            with peft_applied(model, folder) as target:
                yield target

    @cached_property
    def chat_template(self) -> bool:
        """The prompt the task adapter was trained on (its tada_prompt.json; raw without one), by
        the rule of `tada eval` and `tada bench` (read once for every trial)."""
        return prompt_choice(None, read_prompt_format(self.task.path))[0]

    def score_questions(self, model, vs: ValSet, questions: list) -> list[bool]:
        """The per-question outcome of the objective (joint, or correct) on ``questions``."""
        tok = self.model()[1]
        scorer = mcq.Scorer(model, tok, batch_size=self.o.batch_size, chat_template=self.chat_template)
        fn = {"letter": scorer.score_letter, "cloze": scorer.score_cloze, "format": scorer.score_format}[self.scoring]
        preds = fn(vs.dataset, questions, self.shots, self.o.seed, False)
        return [bool(p[self.outcome]) for p in preds]

    def objective(self, method: str, budget: int):
        import optuna

        space = self.spaces[method]

        def run(trial) -> float:
            setting = suggest(trial, space)
            _guard(trial, budget, setting)
            t = time.perf_counter()
            result = self.build(method, setting)
            trial.set_user_attr("merge_s", round(time.perf_counter() - t, 3))
            t = time.perf_counter()
            outcomes: dict[str, list[bool]] = {}
            with self.applied(result) as model:
                for vs in self.sets:
                    outcomes[vs.name] = self.score_questions(model, vs, vs.questions[:vs.head])
                if self.o.prune:
                    partial = _mean_rate(outcomes)
                    trial.report(partial, step=1)
                    trial.set_user_attr("subset_score", partial)
                    if trial.should_prune():
                        trial.set_user_attr("score_s", round(time.perf_counter() - t, 3))
                        raise optuna.TrialPruned(f"subset score {partial:.3f}")
                for vs in self.sets:
                    if vs.head < len(vs.questions):
                        outcomes[vs.name] += self.score_questions(model, vs, vs.questions[vs.head:])
            trial.set_user_attr("score_s", round(time.perf_counter() - t, 3))
            trial.set_user_attr("counts", {n: [sum(v), len(v)] for n, v in outcomes.items()})
            trial.set_user_attr("params", jsonable(method_params(setting, self.k)))
            return _mean_rate(outcomes)

        return run

    # ---- the studies ------------------------------------------------------------------------------
    def declaration(self, method: str) -> dict[str, Any]:
        """What the study of ``method`` is: stored before its first trial, checked on resume."""
        space = self.spaces[method]
        measure = "joint score (in the format and the right option)" if self.scoring == "format" else "accuracy"
        return {"objective": f"mean over the validation sets of the {measure}, {self.scoring} scoring",
                "validation": [s.name for s in self.sets], "scoring": self.scoring, "limit": self.o.limit,
                "shots": self.shots, "seed": self.o.seed, "space": {k: str(v) for k, v in space.items()},
                "sampler": sampler_name(space, self.o.budget), "prune": self.o.prune,
                "pruner": (f"successive halving on the first {PRUNE_FRACTION:.0%} of each set "
                           f"(reduction factor {REDUCTION_FACTOR})" if self.o.prune else "none"),
                "task": str(self.task.path), "domains": [str(d.path) for d in self.domains], "base": self.base_spec.name}

    def storage(self):
        import optuna
        from optuna.storages import RetryFailedTrialCallback

        if self.storage_url.startswith("sqlite:///"):
            Path(self.storage_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 120}} if self.storage_url.startswith("sqlite") else {}

        def open_storage():
            return optuna.storages.RDBStorage(self.storage_url, engine_kwargs=kwargs,
                                              heartbeat_interval=self.o.heartbeat,
                                              grace_period=GRACE_HEARTBEATS * self.o.heartbeat,
                                              # a stale trial's setting is queued again (same params)
                                              heartbeat_stale_trial_callback=RetryFailedTrialCallback())
        return _retrying(open_storage, f"`storage` {self.storage_url}")

    def study(self, method: str, storage):
        import optuna

        space = self.spaces[method]
        study = _retrying(lambda: optuna.create_study(
            study_name=method, storage=storage, direction="maximize", load_if_exists=True,
            sampler=make_sampler(space, self.o.budget, self.o.seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR,
                                                          min_early_stopping_rate=0)),
            f"`storage` {self.storage_url}, study {method}")
        declared = self.declaration(method)
        stored = study.user_attrs.get("declaration")
        if stored is None:
            study.set_user_attr("declaration", declared)
            study.set_user_attr("objective", declared["objective"])
        elif {k: v for k, v in stored.items()} != {k: v for k, v in jsonable(declared).items()}:
            changed = sorted(k for k in set(stored) | set(declared) if stored.get(k) != jsonable(declared).get(k))
            raise TadaError(f"the study {method!r} in {self.storage_url} was started with another {changed[0]} "
                            f"({stored.get(changed[0])!r}); resume with the same inputs or use another `out`/`storage`")
        return study

    def tune_method(self, method: str, storage) -> Any:
        """Run ``method``'s trials until the budget of COMPLETE + PRUNED trials is reached (waiting for
        other workers' running trials; stale ones are failed and run again)."""
        import optuna
        from optuna.trial import TrialState

        study = self.study(method, storage)
        budget = self.o.budget
        # a grid smaller than the budget is run once, whole
        cap = min(budget, grid_size(self.spaces[method]) or budget)
        objective = self.objective(method, cap)
        while True:
            optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if done >= cap:
                return study
            if done + running >= cap:
                time.sleep(min(1.0, self.o.heartbeat))  # other workers' trials: wait for them (or for them to go stale)
                continue
            before = len(trials)
            study.optimize(objective, n_trials=1, catch=(OverBudget, Duplicate))
            last = [t for t in study.get_trials(deepcopy=False) if t.number >= before]
            for t in last:
                self._log(method, t, budget)

    def _log(self, method: str, t, budget: int) -> None:
        if not self.o.progress:
            return
        from optuna.trial import TrialState

        setting = ", ".join(f"{k}={_num(v)}" for k, v in t.params.items())
        if t.state == TrialState.COMPLETE:
            what = f"score {t.value:.3f}"
        elif t.state == TrialState.PRUNED:
            what = f"pruned (subset score {t.user_attrs.get('subset_score', float('nan')):.3f})"
        elif t.user_attrs.get("skipped"):
            return
        else:
            what = "failed"
        print(f"tune {method} trial {t.number}: {setting}: {what}", file=sys.stderr, flush=True)

    def run(self) -> dict:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            # heartbeats and the retry of stale trials are "experimental" in Optuna: not the user's concern
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._run()

    def _run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        storage = self.storage()
        rows = []
        for method in self.methods:
            if self.o.progress:
                space = ", ".join(f"{k} {v}" for k, v in self.spaces[method].items())
                print(f"tune {method}: {sampler_name(self.spaces[method], self.o.budget)} over {space}, budget "
                      f"{self.o.budget}", file=sys.stderr, flush=True)
            rows.append(self.summarize(method, self.tune_method(method, storage)))
        return self.finish(rows)

    def summarize(self, method: str, study) -> dict:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        row: dict[str, Any] = {"method": method, "label": get_method(method).label or method,
                               "sampler": sampler_name(self.spaces[method], self.o.budget),
                               "space": {k: str(v) for k, v in self.spaces[method].items()},
                               "trials_used": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
                               "pruned": sum(t.state == TrialState.PRUNED for t in trials),
                               "failed": sum(t.state == TrialState.FAIL and not t.user_attrs.get("skipped")
                                             for t in trials)}
        for part in ("merge_s", "score_s"):  # mean seconds per trial: building the merge, scoring it
            xs = [t.user_attrs[part] for t in trials if part in t.user_attrs]
            row[f"mean_{part}"] = round(sum(xs) / len(xs), 3) if xs else None
        if not complete:
            return {**row, "score": None, "ci": None, "setting": None, "params": None, "trial": None}
        best = max(complete, key=lambda t: (t.value, -t.number))  # ties: the earliest trial
        counts = best.user_attrs.get("counts", {})
        k, n = sum(c for c, _ in counts.values()), sum(n for _, n in counts.values())
        return {**row, "score": best.value, "ci": list(mcq.wilson_interval(k, n)), "n": n, "trial": best.number,
                "setting": dict(best.params), "params": best.user_attrs.get("params"),
                "per_set": {name: {"rate": c / m, "n": m, "ci": list(mcq.wilson_interval(c, m))}
                            for name, (c, m) in counts.items()}}

    def finish(self, rows: list[dict]) -> dict:
        ranked = sorted((r for r in rows if r["score"] is not None), key=lambda r: -r["score"])
        winner = ranked[0] if ranked else None
        decl = self.declaration(self.methods[0])
        summary = {"objective": decl["objective"], "scoring": self.scoring, "validation": decl["validation"],
                   "limit": self.o.limit, "budget": self.o.budget, "seed": self.o.seed, "storage": self.storage_url,
                   "prune": self.o.prune, "pruner": decl["pruner"], "methods": rows,
                   "winner": winner["method"] if winner else None, "out": str(self.out)}
        if winner is not None:
            written = {"best": self.write(winner, self.out / "best", ranked)}
            if self.o.write_all:
                for r in ranked:
                    written[r["method"]] = self.write(r, self.out / r["method"], ranked)
            summary["adapters"] = written
        write_json(self.out / "leaderboard.json", jsonable(summary))
        write_text(self.out / "leaderboard.md", leaderboard_markdown(summary))
        summary["leaderboard"] = [str(self.out / "leaderboard.json"), str(self.out / "leaderboard.md")]
        return summary

    def write(self, row: dict, folder: Path, ranked: list[dict]) -> str:
        """The best merge of ``row``'s method as an adapter folder, its card naming the tuning."""
        result = self.build(row["method"], row["setting"], out=folder)
        decl = self.declaration(row["method"])
        tuning = {"objective": decl["objective"], "budget": self.o.budget, "validation": decl["validation"],
                  "scoring": self.scoring, "limit": self.o.limit, "score": row["score"], "ci": row["ci"],
                  "trials_used": row["trials_used"], "pruned": row["pruned"], "space": decl["space"],
                  "sampler": decl["sampler"], "pruner": decl["pruner"],
                  "ranking": [{"method": r["method"], "score": r["score"]} for r in ranked]}
        write_text(folder / CARD_NAME, model_card(result.report, result.config, prompt=read_prompt_format(folder),
                                                  tuning=tuning))
        write_json(folder / "tada_tune.json", jsonable({**tuning, "method": row["method"], "setting": row["setting"],
                                                        "params": row["params"]}))
        return str(folder)


def _guard(trial, budget: int, setting: dict) -> None:
    """Refuse a trial asked past the budget (counting the live and finished trials numbered before
    it), and a grid point that an earlier live or finished trial already has."""
    from optuna.trial import TrialState

    study = trial.study
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number
               and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)]
    if len(earlier) >= budget:
        trial.set_user_attr("skipped", "over budget")
        raise OverBudget(f"trial {trial.number}: the budget of {budget} is reached")
    if isinstance(study.sampler, _grid_sampler()) and any(t.params == setting for t in earlier):
        trial.set_user_attr("skipped", "duplicate grid point")
        raise Duplicate(f"trial {trial.number}: {setting} is already run by trial "
                        f"{next(t.number for t in earlier if t.params == setting)}")


#: Errors of two workers creating one storage's tables or study at the same moment: tried again.
RACES = ("IntegrityError", "OperationalError", "DuplicatedStudyError")


def _retrying(fn, what: str, tries: int = 8):
    """``fn()``, tried again after a race with another worker; any other failure (a bad URL, an
    unreachable database) is a one-line error naming ``what``."""
    import random

    for attempt in range(tries):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - sqlalchemy/optuna errors
            if type(exc).__name__ in RACES and attempt < tries - 1:
                time.sleep(0.2 + random.random() * 0.5)
                continue
            raise TadaError(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    raise AssertionError("unreachable")


def _grid_sampler() -> type:
    import optuna

    return optuna.samplers.GridSampler


def _mean_rate(outcomes: dict[str, list[bool]]) -> float:
    return sum(sum(v) / len(v) for v in outcomes.values()) / len(outcomes)


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def leaderboard_markdown(summary: dict) -> str:
    lines = ["# tada tune: leaderboard on validation", "",
             f"Objective: {summary['objective']}. Validation sets: "
             + ", ".join(f"`{v}`" for v in summary["validation"])
             + f" ({summary['limit'] or 'all'} questions each). Budget: {summary['budget']} trials per method "
               f"(the same for every method). Pruner: {summary['pruner']}.", "",
             "| rank | method | best setting | score | 95% CI | trials used | pruned | sampler | s/trial (merge + scoring) |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = sorted(summary["methods"], key=lambda r: -(r["score"] if r["score"] is not None else -1))
    for i, r in enumerate(rows, 1):
        setting = ", ".join(f"{k}={_num(v)}" for k, v in (r["setting"] or {}).items()) or "-"
        score = f"{r['score']:.3f}" if r["score"] is not None else "-"
        ci = "[{:.3f}, {:.3f}]".format(*r["ci"]) if r.get("ci") else "-"
        cost = (f"{r['mean_merge_s']:.2f} + {r['mean_score_s']:.2f}"
                if r.get("mean_merge_s") is not None and r.get("mean_score_s") is not None else "-")
        lines.append(f"| {i} | {r['label']} | {setting} | {score} | {ci} | {r['trials_used']} | {r['pruned']} | "
                     f"{r['sampler']} | {cost} |")
    lines += ["", "The interval is Wilson's on the questions pooled over the validation sets (it is the mean's "
              "interval when every set has the same n)."]
    if summary.get("winner"):
        lines += ["", f"Winner: **{summary['winner']}**, written to `best/`."]
    return "\n".join(lines) + "\n"


def tune(task: str | Adapter, domain: str | Adapter | list, **options: Any) -> dict:
    """Tune every method (``methods``, default all) with the same ``budget`` of trials on the
    validation sets ``val`` and write the leaderboard and the winning adapter to ``out``; returns
    the summary (what ``leaderboard.json`` holds). ``options``: the fields of
    :class:`tada.options.TuneOptions`."""
    o: TuneOptions = build(TuneOptions, options, "tada.tune")
    domains = list(domain) if isinstance(domain, (list, tuple)) else [domain]
    return Tuner(task, domains, o).run()
