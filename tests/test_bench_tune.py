"""``tada tune`` and the joint score: search spaces declared on the parameters, grid vs TPE, the
objective stored in the study, resume after SIGKILL, two workers on one study, the leaderboard
and the winning adapter, one-line errors, and pruning that keeps the full grid's pick. Tiny base
model, tiny validation sets, budgets of 2–6."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from conftest import WORDS, llama_shapes, run_cli, write_adapter  # noqa: E402

from tada.bench import tune as tune_mod  # noqa: E402
from tada.bench.tune import (TASK_WEIGHT, declared_space, grid_size, method_params, sampler_name,  # noqa: E402
                             spaces_for)
from tada.errors import TadaError  # noqa: E402
from tada.methods import REGISTRY  # noqa: E402
from tada.options import Search, opt, options_of  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
VOCAB = [w for w in WORDS if w.isalpha() and w.islower()]
QWORDS = VOCAB[15:]  # the asked words (not "the", "is"…)


def write_val(path: Path, n: int = 6, regex: str = r"^\s*the\b") -> Path:
    """A format validation set in the tiny tokenizer's words (the shape of examples/data/val/*_format_val.jsonl)."""
    rows = []
    for i in range(n):
        options = [f"{VOCAB[(i + j) % len(VOCAB)]} {VOCAB[(3 * i + j + 5) % len(VOCAB)]}" for j in range(4)]
        word = QWORDS[i % len(QWORDS)]
        rows.append({"id": f"v{i}", "question": word, "options": options, "answer": i % 4,
                     "prompt": f"Question : what is the {word} ? Answer :",
                     "format": {"regex": regex, "template": " the {option} ."}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_base):
    from tada.models import load_model, resolve_base

    root = tmp_path_factory.mktemp("tune")
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    task = write_adapter(root / "task", shapes, r=2, alpha=4, seed=0, base=str(tiny_base))
    domain = write_adapter(root / "domain", shapes, r=2, alpha=4, seed=1, base=str(tiny_base))
    val = write_val(root / "toy_format_val.jsonl")
    return {"task": task, "domain": domain, "val": val, "base": tiny_base, "root": root}


def cli_args(inputs, out: Path, *extra) -> list[str]:
    return ["tune", "--task", str(inputs["task"]), "--domain", str(inputs["domain"]), "--val", str(inputs["val"]),
            "--base", str(inputs["base"]), "--out", str(out), "--limit", "6", *map(str, extra)]


def trials_of(out: Path, method: str):
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    return optuna.load_study(study_name=method, storage=storage).get_trials(deepcopy=False)


def done(trials) -> list:
    from optuna.trial import TrialState

    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


# ---- search spaces -------------------------------------------------------------------------------

def test_search_spaces_are_declared_on_the_parameters_and_read():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class P:
        x: float = opt(0.5, "x", search=(0.1, 0.9))
        y: float = opt(1.0, "y", search=(0.01, 10.0), log=True)
        z: int = opt(3, "z", search=[1, 3, 5])
        w: float = opt(0.0, "no search")

    found = {o.name: o.search for o in options_of(P)}
    assert found["x"] == Search(low=0.1, high=0.9) and not found["x"].finite
    assert found["y"].log and found["z"].finite and found["z"].values == (1, 3, 5) and found["w"] is None
    with pytest.raises(ValueError):
        opt(0.5, search=(0.9, 0.1))
    # every registered method declares a space; the averaging methods search the task's weight
    for m in REGISTRY:
        assert declared_space(m), m
    for m in ("linear", "svd", "cat", "dare_linear", "magnitude_prune", "ties", "dare_ties"):
        assert declared_space(m)[TASK_WEIGHT] == Search(low=0.2, high=0.8), m
    for m in ("ties", "dare_ties", "dare_linear", "magnitude_prune", "knots", "core_space"):
        assert "density" in declared_space(m), m
    for m in ("task_arithmetic", "knots", "core_space", "tsv", "iso_c", "iso_cts"):
        assert "scale" in declared_space(m), m
    assert "common_fraction" in declared_space("iso_cts")
    assert set(declared_space("tada")) == {"tau_scale", "beta", "delta_drop"} and declared_space("tada")["beta"].log
    # the derived knob: the domains share 1 − w_T equally
    assert method_params({TASK_WEIGHT: 0.4, "density": 0.5}, 2) == {"density": 0.5, "weights": (0.4, 0.3, 0.3)}


def test_grid_when_the_space_is_finite_and_fits_the_budget_else_tpe():
    spaces = spaces_for(["linear", "ties"], {"linear.task_weight": [0.3, 0.5, 0.7]})
    assert grid_size(spaces["linear"]) == 3 and grid_size(spaces["ties"]) is None
    assert sampler_name(spaces["linear"], 3) == "grid" and sampler_name(spaces["linear"], 2) == "tpe"
    assert sampler_name(spaces["ties"], 100) == "tpe"
    assert isinstance(tune_mod.make_sampler(spaces["linear"], 4, 0), optuna.samplers.GridSampler)
    assert isinstance(tune_mod.make_sampler(spaces["ties"], 4, 0), optuna.samplers.TPESampler)
    ranged = spaces_for(["tada"], {"tada.beta": "1..30:log"})["tada"]["beta"]
    assert (ranged.low, ranged.high, ranged.log) == (1.0, 30.0, True)
    with pytest.raises(TadaError, match="no parameter 'weight'"):
        spaces_for(["linear"], {"linear.weight": [0.5]})


# ---- the joint score -----------------------------------------------------------------------------

def test_joint_score_is_per_question_and_not_the_product(monkeypatch, tiny_base):
    """joint = compliant AND right, question by question: here 0.5, while format 0.5 × content 0.75 = 0.375."""
    from conftest import tiny_tokenizer

    from tada.eval import mcq
    from tada.eval.datasets import load_dataset_by_name
    from tada.eval.stats import paired_predictions
    from tada.models import load_model, resolve_base

    tok = tiny_tokenizer()
    correct = [True, True, True, False]
    complies = [True, False, True, False]
    the = tok.convert_tokens_to_ids("the")

    def which(ids) -> int:  # the question a prompt asks (its word follows "is the")
        return QWORDS.index(tok.decode(ids).split(" is the ")[1].split()[0])

    def fake_cloze(self, dataset, questions, shots, seed, progress, scoring="cloze"):
        return [{"id": q.id, "gold": q.answer, "predicted": q.answer if ok else (q.answer + 1) % 4, "correct": ok,
                 "correct_norm": ok, "correct_norm_bytes": ok}
                for q in questions for ok in [correct[int(q.id[1:])]]]

    def fake_greedy(self, prompts, max_new_tokens, finished=None):
        return [[the] if complies[which(p)] else [tok.eos_token_id] for p in prompts]

    monkeypatch.setattr(mcq.Scorer, "score_cloze", fake_cloze)
    monkeypatch.setattr(mcq.Scorer, "greedy", fake_greedy)
    ds = load_dataset_by_name(str(write_val(Path(str(tiny_base)) / "joint_format_val.jsonl", n=4)))
    res = mcq.evaluate(load_model(resolve_base(str(tiny_base))), tok, ds, scoring="format", shots=0, progress=False)
    assert [p["format_ok"] for p in res.predictions] == complies
    assert [p["joint"] for p in res.predictions] == [True, False, True, False]
    assert res.metrics["joint_rate"] == 0.5 and res.metrics["format_rate"] == 0.5 and res.accuracy == 0.75
    assert res.metrics["joint_rate"] != res.metrics["format_rate"] * res.accuracy
    lo, hi = res.metrics["joint_ci"]
    assert lo < 0.5 < hi
    other = [{**p, "joint": True} for p in res.predictions]
    test = paired_predictions(other, res.predictions, "joint")
    assert (test.only_first, test.only_second, test.diff) == (2, 0, 0.5) and test.p == 0.5


def test_format_tables_show_a_joint_column_beside_format_and_content():
    from tada.bench.tables import format_rows

    def rec(run, group, joint):
        metrics = {"format_rate": 0.5, "format_ci": [0.2, 0.8]}
        if joint is not None:
            metrics["joint_rate"] = joint
        return {"run": run, "group": group, "scoring": "format", "dataset": "d", "accuracy": 0.75, "n": 4,
                "metrics": metrics, "params": {}}

    head, _, columns = format_rows([rec("base", "base", 0.25), rec("linear", "linear", 0.5)], ["d"], ["linear"])
    assert columns == ["d format", "d acc", "d joint"]
    assert [r.values["d joint"] for r in head] == [0.25, 0.5]
    _, _, old = format_rows([rec("base", "base", None)], ["d"], ["linear"])
    assert old == ["d format", "d acc"]  # records scored before the joint score: no column


# ---- the tuner end to end ------------------------------------------------------------------------

def test_tune_writes_the_leaderboard_the_objective_and_a_loadable_winner(inputs, tmp_path):
    import tada

    out = tmp_path / "run"
    summary = tada.tune(str(inputs["task"]), str(inputs["domain"]), val=str(inputs["val"]), base=str(inputs["base"]),
                        methods="linear,task_arithmetic", budget=2, limit=6, out=str(out), write_all=True,
                        progress=False)
    assert {r["method"] for r in summary["methods"]} == {"linear", "task_arithmetic"}
    for row in summary["methods"]:
        assert row["trials_used"] == 2 and row["sampler"] == "tpe"
        assert 0 <= row["ci"][0] <= row["score"] <= row["ci"][1] <= 1
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["winner"] == summary["winner"] and "joint score" in board["objective"]
    md = (out / "leaderboard.md").read_text()
    assert "| rank | method | best setting | score | 95% CI | trials used | pruned |" in md
    study = optuna.load_study(study_name="linear", storage=f"sqlite:///{out / 'study.db'}")
    assert study.user_attrs["objective"] == board["objective"]
    assert study.user_attrs["declaration"]["space"] == {TASK_WEIGHT: "[0.2, 0.8]"}
    card = (out / "best" / "README.md").read_text()
    assert "## Tuning" in card and board["objective"] in card and "budget of 2" in card
    assert (out / "linear" / "adapter_config.json").is_file() and (out / "task_arithmetic").is_dir()

    from peft import PeftModel
    from transformers import LlamaForCausalLM

    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(str(inputs["base"])), str(out / "best"))
    assert model.peft_config["default"].r >= 1
    # resuming a finished study runs nothing more
    again = tada.tune(str(inputs["task"]), str(inputs["domain"]), val=str(inputs["val"]), base=str(inputs["base"]),
                      methods=["linear"], budget=2, limit=6, out=str(out), progress=False)
    assert again["methods"][0]["trials_used"] == 2 and len(trials_of(out, "linear")) == 2


def test_tada_and_ties_tune_on_cached_probe_statistics(inputs, tmp_path):
    """Methods that need probes get statistics computed once (here: given as files) and reused."""
    from conftest import random_stats

    import tada
    from tada.models import load_model, resolve_base

    shapes = llama_shapes(load_model(resolve_base(str(inputs["base"]))))
    random_stats(shapes, seed=1).save(tmp_path / "d.safetensors")
    random_stats(shapes, seed=2).save(tmp_path / "g.safetensors")
    summary = tada.tune(str(inputs["task"]), [str(inputs["domain"])], val=[str(inputs["val"])],
                        base=str(inputs["base"]), methods=["tada", "ties"], budget=2, limit=3,
                        domain_stats=str(tmp_path / "d.safetensors"), general_stats=str(tmp_path / "g.safetensors"),
                        out=str(tmp_path / "run"), progress=False)
    rows = {r["method"]: r for r in summary["methods"]}
    assert set(rows["tada"]["setting"]) == {"tau_scale", "beta", "delta_drop"} and rows["tada"]["trials_used"] == 2
    assert set(rows["ties"]["setting"]) == {"density", TASK_WEIGHT}
    assert abs(sum(rows["ties"]["params"]["weights"]) - 1) < 1e-9


def test_a_bad_input_is_one_line_error(inputs, tmp_path, capsys):
    cases = [("--val", str(tmp_path / "missing.jsonl"), "file not found"),
             ("--methods", "lineer", "did you mean linear"),
             ("--search", "linear.task_weight=oops", "search"),
             ("--budget", "0", "budget")]
    for flag, value, words in cases:
        args = cli_args(inputs, tmp_path / "bad", "--methods", "linear") if flag != "--methods" else \
            cli_args(inputs, tmp_path / "bad")
        args += [flag, value] if flag != "--val" else []
        if flag == "--val":
            args[args.index("--val") + 1] = value
        code, out, err = run_cli(capsys, *args)
        assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, (flag, err)
        assert words in err, (flag, err)


def test_pruned_search_picks_the_same_setting_as_its_full_grid(inputs, tmp_path, monkeypatch):
    """Deterministic fake scores: question j of n is right when its rank (a fixed permutation) is below
    s(w) = 1 − 2|w − 0.6|, so every subset reflects s. The pruned grid keeps the full grid's pick."""
    grid = [0.2, 0.3, 0.4, 0.5, 0.6, 0.8]
    val = write_val(tmp_path / "many_format_val.jsonl", n=24)
    seen = []

    def fake_build(self, method, setting, out=None):
        if out is not None:
            return real_build(self, method, setting, out)
        return setting

    from contextlib import contextmanager

    @contextmanager
    def fake_applied(self, result):
        yield result

    def fake_score(self, setting, vs, questions):
        seen.append(len(questions))
        n = len(vs.questions)
        s = 1 - 2 * abs(setting[TASK_WEIGHT] - 0.6)
        return [((vs.questions.index(q) * 7) % n) / n < s for q in questions]

    real_build = tune_mod.Tuner.build
    monkeypatch.setattr(tune_mod.Tuner, "build", fake_build)
    monkeypatch.setattr(tune_mod.Tuner, "applied", fake_applied)
    monkeypatch.setattr(tune_mod.Tuner, "score_questions", fake_score)
    picks = {}
    for prune in (False, True):
        out = tmp_path / f"prune-{prune}"
        summary = tune_mod.tune(str(inputs["task"]), str(inputs["domain"]), val=str(val), base=str(inputs["base"]),
                                methods="linear", budget=len(grid), out=str(out), prune=prune, progress=False,
                                search={"linear.task_weight": grid})
        row = summary["methods"][0]
        assert row["sampler"] == "grid" and row["trials_used"] == len(grid)
        picks[prune] = (row["setting"], row["pruned"])
        assert len({t.params[TASK_WEIGHT] for t in done(trials_of(out, "linear"))}) == len(grid)
    assert picks[True][0] == picks[False][0] == {TASK_WEIGHT: 0.6}
    assert picks[False][1] == 0 and picks[True][1] >= 1  # the pruned search stopped some trials early
    assert 8 in seen  # the first third of 24 questions scored first


# ---- resume after SIGKILL, two workers -----------------------------------------------------------

SLOW_CLI = """
import sys, time
sys.path[:0] = [{src!r}, {tests!r}]
from tada.bench import tune
real = tune.Tuner.score_questions
def slow(self, model, vs, questions):
    time.sleep({delay})
    return real(self, model, vs, questions)
tune.Tuner.score_questions = slow
from tada.cli import main
main(sys.argv[1:])
"""


def start(inputs, out: Path, delay: float, *extra) -> subprocess.Popen:
    """``python -m tada.cli tune ...`` (its scoring slowed down by ``delay`` seconds per set)."""
    code = SLOW_CLI.format(src=str(SRC), tests=str(TESTS), delay=delay)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    args = cli_args(inputs, out, "--methods", "linear", "--budget", "4", "--no-prune", "--heartbeat", "1",
                    "--search", "linear.task_weight=[0.2,0.4,0.6,0.8]", *extra)
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_killed_tune_resumes_where_it_stopped(inputs, tmp_path):
    from optuna.trial import TrialState

    out = tmp_path / "killed"
    proc = start(inputs, out, 1.0)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "study.db").is_file():
            try:
                if any(t.state == TrialState.COMPLETE for t in trials_of(out, "linear")):
                    break
            except Exception:  # noqa: BLE001 - the study is being created
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = trials_of(out, "linear")
    assert 1 <= len(done(before)) < 4
    assert any(t.state == TrialState.RUNNING for t in before)  # the killed worker's trial
    again = start(inputs, out, 0.0, "--json")
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    trials = trials_of(out, "linear")
    finished = done(trials)
    assert len(finished) == 4  # the budget, no more
    assert len({t.params[TASK_WEIGHT] for t in finished}) == 4  # no grid point run twice, none lost
    assert json.loads(stdout)["methods"][0]["trials_used"] == 4
    assert any(t.state == TrialState.FAIL for t in trials)  # the stale trial, marked failed and run again


def test_two_workers_on_one_study_run_exactly_the_budget(inputs, tmp_path):
    out = tmp_path / "workers"
    out.mkdir()
    procs = [start(inputs, out, 0.3) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    finished = done(trials_of(out, "linear"))
    assert len(finished) == 4
    assert len({t.params[TASK_WEIGHT] for t in finished}) == 4
