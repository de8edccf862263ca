"""Scoring on a tiny Llama with a word-level tokenizer: constrained letter decoding, cloze
log-likelihood, prefix-cache reuse, batching, Wilson interval, macro-F1, token savings."""
from __future__ import annotations

import pytest
import torch

from tada.errors import TadaError
from tada.eval.datasets import MCQ, MCQDataset
from tada.eval.mcq import Scorer, Template, evaluate, letter_token_ids, macro_f1, wilson_interval
from tada.models import load_model, resolve_base
from tada.eval.prompts import LETTERS

@pytest.fixture(scope="module")
def model_tok(tiny_base, tmp_path_factory):
    from conftest import tiny_tokenizer

    tok = tiny_tokenizer()
    assert len(tok) <= 64  # fits the tiny model's vocabulary
    return load_model(resolve_base(str(tiny_base))), tok


def dataset(n: int = 10, disjoint: bool = True) -> MCQDataset:
    words = "the cell gene protein heart brain blood river city king war music".split()
    qs = [MCQ(f"q{i}", f"the {words[i % 12]} of a {words[(i * 5) % 12]}",
              tuple(words[(i + j) % 12] for j in range(4)), i % 4) for i in range(n)]
    shots = [MCQ(f"s{i}", f"a {words[i]} is", tuple(words[(i + j + 3) % 12] for j in range(4)), (i + 1) % 4)
             for i in range(5)]
    return MCQDataset("toy", qs, shots if disjoint else qs, {"fewshot_from_test": not disjoint})


def manual_letter_logits(model, tok, prompt_prefix: str, question: str, n_opt: int) -> list[float]:
    ids = tok.encode(prompt_prefix) + tok.encode(question, add_special_tokens=False)
    with torch.no_grad():
        row = model(torch.tensor([ids])).logits[0, -1]
    return [max(float(row[t]) for t in ids_) for ids_ in letter_token_ids(tok, n_opt)]


def test_prediction_is_the_argmax_of_restricted_logits(model_tok):
    model, tok = model_tok
    ds = dataset()
    res = evaluate(model, tok, ds, shots=3, seed=0, progress=False)
    scorer = Scorer(model, tok)
    from tada.eval.datasets import fewshot_for

    for q, p in zip(ds.test, res.predictions):
        prefix = scorer.template.prefix(fewshot_for(ds, 3, 0, q.id), "letter")
        want = manual_letter_logits(model, tok, prefix, scorer.template.question(q, "letter"), 4)
        assert p["letter_logits"] == pytest.approx(want, rel=1e-4, abs=1e-4)
        assert p["predicted"] == max(range(4), key=want.__getitem__)
    assert res.n == 10 and 0 <= res.accuracy <= 1


def test_prefix_reuse_and_batching_do_not_change_logits(model_tok):
    model, tok = model_tok
    ds = dataset()
    runs = [evaluate(model, tok, ds, batch_size=b, prefix_cache=c, progress=False)
            for b, c in ((1, True), (4, True), (3, False), (1, False))]
    for other in runs[1:]:
        for a, b in zip(runs[0].predictions, other.predictions):
            assert a["predicted"] == b["predicted"]
            assert a["letter_logits"] == pytest.approx(b["letter_logits"], rel=1e-4, abs=1e-4)
    assert runs[0].tokens["reduction"] >= 3.0  # vs one request per option, prefix re-encoded


@pytest.mark.parametrize("shots,rows", [(0, True), (0, False), (2, False)])  # rows: batched full rows
def test_cloze_loglik_matches_manual(model_tok, shots, rows, monkeypatch):
    model, tok = model_tok
    monkeypatch.setattr(Scorer, "_rows_cheaper", lambda self, prefix, q, scoring="cloze": rows)
    ds = dataset(4)
    res = evaluate(model, tok, ds, scoring="cloze", shots=shots, progress=False)
    from tada.eval.datasets import fewshot_for

    tmpl = Template("", "")
    for q, p in zip(ds.test, res.predictions):
        ctx = tok.encode(tmpl.prefix(fewshot_for(ds, shots, 0, q.id), "cloze")) + \
            tok.encode(tmpl.question(q, "cloze"), add_special_tokens=False)
        for o, got in zip(q.options, p["loglik"]):
            cont = tok.encode(" " + o, add_special_tokens=False)
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
            want = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
            assert got == pytest.approx(want, rel=1e-4, abs=1e-4)
    assert "acc_norm" in res.metrics


def test_fewshot_never_contains_the_asked_question(model_tok):
    model, tok = model_tok
    ds = dataset(6, disjoint=False)
    scorer = Scorer(model, tok)
    groups = scorer._group_by_prefix(ds, ds.test, 3, 0, "letter")
    for prefix, qs in groups:
        for q in qs:
            assert f"Question: {q.question}\n" not in prefix


def test_wilson_interval_known_values():
    from scipy.stats import binomtest

    for k, n in ((8, 10), (81, 263), (0, 20), (20, 20), (1, 1)):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_macro_f1():
    # gold [0,0,1,2], pred [0,1,1,1]: F1 class0 = 2/3, class1 = 2/3·… → computed by hand
    gold, pred = [0, 0, 1, 2], [0, 1, 1, 1]
    f0 = 2 * 1 / (2 * 1 + 0 + 1)
    f1 = 2 * 1 / (2 * 1 + 2 + 0)
    f2 = 0.0
    assert macro_f1(gold, pred, 3) == pytest.approx((f0 + f1 + f2) / 3)


def test_letters_single_tokens(model_tok):
    """The word-level tokenizer of these tests: "A" and " A" are the same single token."""
    _, tok = model_tok
    assert LETTERS[:4] == "ABCD"
    vocab = tok.get_vocab()
    ids = letter_token_ids(tok, 4)
    assert ids == [[vocab[c]] for c in "ABCD"]
    assert len({i for group in ids for i in group}) == 4  # distinct across letters


def byte_level_tokenizer():
    """A byte-level BPE (GPT-2 style) where "A" and " A" ("ĠA") are different single tokens, except
    " C", which stays two tokens ("Ġ", "C")."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "Ġ": 1, "A": 2, "B": 3, "C": 4, "D": 5, "ĠA": 6, "ĠB": 7, "ĠD": 8, "x": 9}
    merges = [("Ġ", "A"), ("Ġ", "B"), ("Ġ", "D")]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>")


def test_letters_single_tokens_byte_level():
    tok = byte_level_tokenizer()
    assert tok.encode(" C", add_special_tokens=False) == [1, 4]  # the fixture is what it claims
    assert letter_token_ids(tok, 4) == [[2, 6], [3, 7], [4], [5, 8]]


def test_letter_missing_from_the_vocabulary_is_refused():
    from conftest import tiny_tokenizer

    for tok in (tiny_tokenizer(), byte_level_tokenizer()):  # neither has a token for "E"
        with pytest.raises(TadaError, match="no single token for the answer letter 'E'"):
            letter_token_ids(tok, 5)
