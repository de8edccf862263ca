"""``--scoring format``: compliance of a greedy generation with the dataset's declared regex and
content accuracy of the options written in its template, on a tiny Llama (and, marked slow, on
SmolLM2 with the shipped format adapter)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tada.errors import TadaError
from tada.eval.datasets import MCQ, AnswerFormat, MCQDataset, fewshot_for, load_jsonl, write_jsonl
from tada.eval.mcq import FORMAT_MAX_NEW_TOKENS, Scorer, evaluate
from tada.models import load_model, resolve_base

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WORDS = "the cell gene protein heart brain blood river city king war music".split()
# Every token is in the tiny word-level tokenizer's vocabulary.
TINY_FORMAT = AnswerFormat(regex=r"^\s*\S", template=" the {option} .")


@pytest.fixture(scope="module")
def model_tok(tiny_base):
    from conftest import tiny_tokenizer

    return load_model(resolve_base(str(tiny_base))), tiny_tokenizer()


@pytest.fixture(scope="module")
def peaky_model_tok():
    """A tiny Llama with large random weights and a short RoPE period: varied greedy generations
    (some stop at </s>) that depend on the position ids, to check the batched decoder."""
    from transformers import LlamaForCausalLM

    from conftest import tiny_llama_config, tiny_tokenizer

    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config(rope_theta=2.0, initializer_range=0.3)).eval(), tiny_tokenizer()


def dataset(n: int = 6, fmt: AnswerFormat = TINY_FORMAT) -> MCQDataset:
    qs = [MCQ(f"q{i}", WORDS[i % 12], tuple(f"{WORDS[(i + j) % 12]} of a {WORDS[(i * 5 + j) % 12]}" for j in range(4)),
              i % 4, prompt=f"Question : what is the {WORDS[i % 12]} ? Answer :", format=fmt) for i in range(n)]
    return MCQDataset("toy-format", qs, qs, {"fewshot_from_test": True})


@pytest.mark.parametrize("shots,rows", [(0, True), (0, False), (2, False)])  # rows: batched full rows
def test_content_loglik_matches_a_full_forward(model_tok, shots, rows, monkeypatch):
    """acc and acc_norm from the sum of log p(filled template | prompt), computed independently by a
    full forward of prompt + continuation, and acc_norm's divisor in characters."""
    model, tok = model_tok
    monkeypatch.setattr(Scorer, "_rows_cheaper", lambda self, prefix, q, scoring="cloze": rows)
    ds = dataset()
    res = evaluate(model, tok, ds, scoring="format", shots=shots, progress=False)
    correct = correct_norm = 0
    for q, p in zip(ds.test, res.predictions):
        prefix = "".join(s.prompt + s.format.fill(s.options[s.answer]) + "\n\n" for s in fewshot_for(ds, shots, 0, q.id))
        ctx = tok.encode(prefix) + tok.encode(q.prompt, add_special_tokens=False)
        want = []
        for o in q.options:
            cont = tok.encode(f" the {o} .", add_special_tokens=False)
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
            want.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)))
        assert p["loglik"] == pytest.approx(want, rel=1e-4, abs=1e-4)
        best = max(range(4), key=want.__getitem__)
        best_norm = max(range(4), key=lambda k: want[k] / len(f" the {q.options[k]} ."))
        assert (p["predicted"], p["predicted_norm"]) == (best, best_norm)
        correct += best == q.answer
        correct_norm += best_norm == q.answer
    assert res.accuracy == correct / len(ds.test)
    assert res.metrics["acc_norm"] == correct_norm / len(ds.test)
    assert {"format_rate", "format_ci", "acc_norm"} <= set(res.metrics)


def test_generation_is_hf_greedy_and_scoring_is_deterministic(peaky_model_tok):
    model, tok = peaky_model_tok
    ds = dataset(8)
    runs = [evaluate(model, tok, ds, scoring="format", shots=0, batch_size=b, progress=False) for b in (4, 4, 1)]
    assert runs[0].predictions == runs[1].predictions and runs[0].metrics == runs[1].metrics
    for a, b in zip(runs[0].predictions, runs[2].predictions):  # batching (left padding) changes nothing
        assert a["generation"] == b["generation"] and a["predicted"] == b["predicted"]
    for q, p in zip(ds.test, runs[2].predictions):
        ids = torch.tensor([tok.encode(q.prompt)])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=FORMAT_MAX_NEW_TOKENS,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
        full = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        # the row stops once its compliance is decided: a prefix of HF's generation, same verdict
        assert full.startswith(p["generation"]) and p["format_ok"] == TINY_FORMAT.complies(full)
        assert p["generation"] == full or TINY_FORMAT.decided(p["generation"])
    generations = [p["generation"] for p in runs[0].predictions]
    assert len(set(generations)) >= 3 and "" in generations  # varied, and some rows stop early


@pytest.mark.parametrize("pattern", [r"^\s*\S", r"^\s*[a-m]", r"ab", r"^\s*\S+ \S", r"\S$", r"(?!)", r""])
def test_stopping_once_decided_never_changes_the_verdict(peaky_model_tok, pattern):
    """Greedy generation with and without the early stop, on varied generations: the same
    compliance for anchored, unanchored, end-anchored (never stopped early) and trivial patterns."""
    from tada.eval.mcq import Scorer

    model, tok = peaky_model_tok
    fmt = AnswerFormat(pattern, TINY_FORMAT.template)
    scorer = Scorer(model, tok, batch_size=4)
    prompts = [tok.encode(q.prompt) for q in dataset(8).test]
    full = scorer.greedy(prompts, FORMAT_MAX_NEW_TOKENS)
    early = scorer.greedy(prompts, FORMAT_MAX_NEW_TOKENS, lambda i, ids: fmt.decided(tok.decode(ids, skip_special_tokens=True)))
    for f, e in zip(full, early):
        assert f[:len(e)] == e
        assert fmt.complies(tok.decode(f, skip_special_tokens=True)) == fmt.complies(tok.decode(e, skip_special_tokens=True))
    if pattern == r"\S$":
        assert early == full  # an end anchor is never decided early


def test_decided():
    json_start = AnswerFormat(r'^\s*\{"definition": "', " {option}")
    assert json_start.decided(' {"definition": "a') and json_start.decided(" Hello")
    assert not json_start.decided(' {"defin') and not json_start.decided("  ")
    assert not AnswerFormat("abc", " {option}").decided("xyz")  # an unanchored match may still start
    assert not AnswerFormat("abc$", " {option}").decided("abc")  # more text may undo an end anchor


def test_acc_norm_divides_by_characters():
    """Hand-computed: log-likelihoods -8.1 and -12.0 for continuations of 8 and 12 characters
    (" the a ." and " the bbbbb ."): raw picks option 0, per character -1.0125 < -1.0 picks 1; two
    options of 11 characters but 15 and 11 bytes: per character -13/11 < -12/11 picks 1."""
    q = MCQ("q", "w", ("a", "bbbbb"), 0, prompt="p", format=TINY_FORMAT)
    p = Scorer._cloze_prediction(q, [-8.1, -12.0], "format")
    assert (p["predicted"], p["predicted_norm"]) == (0, 1)
    q = MCQ("q", "w", ("\u00e9\u00e9\u00e9\u00e9", "bbbb"), 0, prompt="p", format=TINY_FORMAT)
    assert Scorer._cloze_prediction(q, [-13.0, -12.0], "format")["predicted_norm"] == 1


def test_format_rate_follows_the_declared_regex(model_tok):
    model, tok = model_tok
    never = evaluate(model, tok, dataset(fmt=AnswerFormat(r"(?!)", TINY_FORMAT.template)), scoring="format",
                     shots=0, progress=False)
    assert never.metrics["format_rate"] == 0.0 and never.metrics["format_ci"][0] == 0.0
    always = evaluate(model, tok, dataset(fmt=AnswerFormat(r"", TINY_FORMAT.template)), scoring="format",
                      shots=0, progress=False)
    assert always.metrics["format_rate"] == 1.0
    # the content side does not depend on the regex
    assert [p["loglik"] for p in never.predictions] == [p["loglik"] for p in always.predictions]


def test_a_dataset_without_format_is_a_one_line_error(model_tok):
    model, tok = model_tok
    plain = MCQDataset("plain", [MCQ("q", "the cell", ("gene", "heart"), 0)], [], {"fewshot_from_test": False})
    with pytest.raises(TadaError, match="declares no answer format"):
        evaluate(model, tok, plain, scoring="format", shots=0, progress=False)


def test_jsonl_format_fields_are_checked_and_round_trip(tmp_path):
    record = {"question": "w", "options": ["a", "b"], "answer": 1, "prompt": "Q: w\nA:",
              "format": {"regex": "^ x", "template": " x {option}"}}
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (q,) = load_jsonl(path)
    assert q.prompt == "Q: w\nA:" and q.format == AnswerFormat("^ x", " x {option}")
    assert q.format.fill("b") == " x b"
    write_jsonl(tmp_path / "g.jsonl", [q])
    assert load_jsonl(tmp_path / "g.jsonl")[0].format == q.format
    bad = [({"format": {"regex": "(", "template": "{option}"}}, "not a valid regular expression"),
           ({"format": {"regex": "x", "template": "no slot"}}, "must contain {option}"),
           ({"format": {"regex": "x"}}, "'regex' and 'template'"),
           ({"prompt": None}, "go together")]
    for change, message in bad:
        path.write_text(json.dumps({**record, **change}) + "\n")
        with pytest.raises(TadaError, match=message):
            load_jsonl(path)


def test_bench_scores_format_only_where_declared_and_tables_have_both_columns(tmp_path, tiny_base):
    from tada.bench.text import Bench, BenchConfig
    from tada.bench.tables import write_tables

    from conftest import llama_shapes, write_adapter

    fmt_path, plain_path = tmp_path / "fmt.jsonl", tmp_path / "plain.jsonl"
    write_jsonl(fmt_path, dataset().test)
    write_jsonl(plain_path, [MCQ(f"p{i}", "the cell", ("gene", "heart"), i % 2) for i in range(4)])
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    cfg = BenchConfig(name="toy", base=str(tiny_base), task=str(write_adapter(tmp_path / "t", shapes, r=2, alpha=4, seed=0)),
                      domain=str(write_adapter(tmp_path / "d", shapes, r=2, alpha=4, seed=1)),
                      datasets=[str(fmt_path), str(plain_path)], methods=["linear"], scoring=["format", "cloze"],
                      shots=0, limit=None, out=str(tmp_path / "run"))
    records = Bench(cfg, progress=False).run()
    cells = {(r["run"], Path(r["dataset"]).name, r["scoring"]) for r in records}
    assert ("base", "fmt.jsonl", "format") in cells and ("base", "plain.jsonl", "cloze") in cells
    assert not any(name == "plain.jsonl" and s == "format" for _, name, s in cells)
    assert all("format_rate" in r["metrics"] for r in records if r["scoring"] == "format")
    write_tables(records, cfg, show=False)
    table = (tmp_path / "run" / "table.format.md").read_text()
    assert f"{fmt_path} format" in table and f"{fmt_path} acc" in table and str(plain_path) not in table
    base = next(r for r in records if r["run"] == "base" and r["scoring"] == "format")
    assert f"{base['metrics']['format_rate']:.3f}" in table.split("Base model", 1)[1].split("\n", 1)[0]


@pytest.mark.slow
def test_shipped_format_adapter_complies_and_the_base_does_not():
    """SmolLM2-135M: the shipped task-format adapter answers held-out words in the format, the base
    model (same prompt) does not."""
    from peft import PeftModel

    from tada.models import load_tokenizer, smollm2_gguf

    torch.set_num_threads(min(2, torch.get_num_threads()))
    spec = smollm2_gguf()
    model, tok = load_model(spec), load_tokenizer(spec)
    ds = MCQDataset("general_format", load_jsonl(EXAMPLES / "data" / "eval" / "general_format.jsonl"), [],
                    {"fewshot_from_test": False})
    base = evaluate(model, tok, ds, scoring="format", shots=0, limit=24, progress=False)
    adapted = PeftModel.from_pretrained(model, str(EXAMPLES / "adapters" / "task-format"))
    tuned = evaluate(adapted, tok, ds, scoring="format", shots=0, limit=24, progress=False)
    assert tuned.metrics["format_rate"] >= 0.9
    assert base.metrics["format_rate"] <= 0.2


def test_cli_eval_scoring_format(capsys, tmp_path, tiny_base):
    """``tada eval --scoring format``: zero-shot by default, rate and content accuracy printed, the
    generation in every prediction; a dataset without a format is a one-line error."""
    from conftest import run_cli

    def cli(*args):
        return run_cli(capsys, *args)

    fmt = tmp_path / "fmt.jsonl"
    write_jsonl(fmt, dataset().test)
    code, out, err = cli("eval", "--base", tiny_base, "--dataset", fmt, "--scoring", "format",
                         "--out", tmp_path / "p.jsonl")
    assert code == 0, err
    assert "(format, 0-shot)" in out and "format compliance" in out and "acc_norm" in out
    preds = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and all("generation" in p and "format_ok" in p for p in preds)
    record = json.loads((tmp_path / "p.json").read_text())
    assert 0 <= record["metrics"]["format_rate"] <= 1 and record["key"]["shots"] == 0
    # the same record a `tada bench` cell caches (tada.eval.records.cell_record)
    assert {"key", "dataset", "dataset_meta", "scoring", "accuracy", "n", "ci", "metrics", "tokens", "versions",
            "seconds"} <= set(record)
    assert set(record["key"]) == {"base", "adapter_sha256", "dataset", "scoring", "shots", "seed", "limit",
                                  "chat_template", "model_dtype"}
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"question": "the cell", "options": ["gene", "heart"], "answer": 0}) + "\n")
    code, _, err = cli("eval", "--base", tiny_base, "--dataset", plain, "--scoring", "format")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "declares no answer format" in lines[0], err


def test_holm_adjusts_a_family_of_p_values():
    """Holm–Bonferroni by hand: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 → 0.02, 0.03, 0.06, max(0.04, 0.06)."""
    from tada.eval.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []
