"""tada.api.evaluating: tada eval (its prompt, its chat template) and tada export-base."""
from __future__ import annotations

import json
import shutil

import pytest
import torch


from conftest import run_cli


def test_export_base_writes_a_plain_transformers_folder(tmp_path, tiny_base, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from tada.models import load_model, resolve_base

    code, out, err = run_cli(capsys, "export-base", tmp_path / "exp", "--base", tiny_base)
    assert code == 0, err
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "exp")
    original = load_model(resolve_base(str(tiny_base)))
    x = torch.randint(0, 60, (1, 6))
    with torch.no_grad():
        assert torch.equal(exported(x).logits, original(x).logits)
    assert all(p.stat().st_mode & 0o777 in (0o644, 0o755) for p in [tmp_path / "exp", *(tmp_path / "exp").iterdir()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # nothing left beside it
    code, _, err = run_cli(capsys, "export-base", tmp_path / "exp", "--base", tiny_base)
    assert code == 2 and "--force" in err
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    code, _, err = run_cli(capsys, "export-base", notes, "--base", tiny_base, "--force")
    assert code == 2 and "not a model folder" in err and (notes / "todo.txt").read_text() == "mine"


def test_export_base_drops_the_gguf_quantization_config(tmp_path, tiny_base, monkeypatch):
    """A base read from GGUF carries ``quantization_config: {quant_method: gguf}``; the export is a
    plain transformers folder, which lm-eval's ``--model hf`` refuses otherwise (issue #26)."""
    import json

    import tada.api.evaluating as evaluating
    from tada.models import load_model

    def gguf_like(spec, **kw):
        model = load_model(spec, **kw)
        model.config.quantization_config = {"quant_method": "gguf"}
        return model

    monkeypatch.setattr(evaluating, "load_model", gguf_like)
    evaluating.export_base(tmp_path / "exp", base=str(tiny_base))
    config = json.loads((tmp_path / "exp" / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"


@pytest.mark.slow
def test_export_of_the_embedded_gguf_gives_the_same_logits(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from tada.api import export_base
    from tada.models import load_model, smollm2_gguf

    export_base(tmp_path / "smollm2")
    x = torch.tensor([[1, 504, 3546, 29, 1311]])
    with torch.no_grad():
        a = load_model(smollm2_gguf())(x).logits
        b = AutoModelForCausalLM.from_pretrained(tmp_path / "smollm2")(x).logits
    assert torch.equal(a, b)


def toy_jsonl(path, n=5):
    words = "the cell gene protein heart brain blood river city king war music".split()
    lines = [json.dumps({"question": f"the {words[i]} of a {words[(i * 5) % 12]}",
                         "options": [words[(i + j) % 12] for j in range(4)], "answer": i % 4}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


#: A chat template whose words are all in the tiny word-level vocabulary ("<s>" is its BOS).
CHAT = ("<s>{% for m in messages %}Question : {{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %} Answer :{% endif %}")


@pytest.fixture
def chat_base(tiny_base, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "chat_base"
    shutil.copytree(tiny_base, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT
    tok.save_pretrained(folder)
    return folder


def test_eval_chat_template_refused_without_one(capsys, tiny_base, tmp_path):
    data = toy_jsonl(tmp_path / "q.jsonl")
    code, out, err = run_cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--shots", "0", "--chat-template",
                         "--out", tmp_path / "p.jsonl")
    assert code == 2 and "error: --chat-template: this tokenizer has no chat template" in err
    assert not (tmp_path / "p.jsonl").exists()


def test_eval_chat_template_scores_the_templated_prompt(capsys, chat_base, tmp_path):
    """Each question's letter logits equal a by-hand forward on the rendered chat prompt, and
    differ from the plain prompt's."""
    from tada.eval.datasets import load_dataset_by_name
    from tada.models import load_model, load_tokenizer, resolve_base
    from tada.eval.prompts import format_mcq

    data = toy_jsonl(tmp_path / "q.jsonl")
    runs = {}
    for flag in (True, False):
        out = tmp_path / f"p{int(flag)}.jsonl"
        code, stdout, err = run_cli(capsys, "eval", "--base", chat_base, "--dataset", data, "--shots", "0",
                                *(["--chat-template"] if flag else []), "--out", out)
        assert code == 0, err
        runs[flag] = {p["id"]: p for p in map(json.loads, out.read_text().splitlines())}
    spec = resolve_base(str(chat_base))
    model, tok = load_model(spec), load_tokenizer(spec)
    letters = [tok.convert_tokens_to_ids(c) for c in "ABCD"]
    ds = load_dataset_by_name(str(data))
    assert set(runs[True]) == {q.id for q in ds.test} and len(ds.test) == 5
    for q in ds.test:
        body = format_mcq(q.question, list(q.options))
        # rendered by hand from CHAT: "<s>Question : " + body + " Answer :"
        ids = tok.encode("<s>Question : " + body + " Answer :", add_special_tokens=False)
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
        with torch.no_grad():
            row = model(torch.tensor([ids])).logits[0, -1]
        want = [float(row[t]) for t in letters]
        got = runs[True][q.id]["letter_logits"]
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4), q.id
        assert runs[True][q.id]["predicted"] == max(range(4), key=want.__getitem__)
        assert got != pytest.approx(runs[False][q.id]["letter_logits"], rel=1e-3, abs=1e-3)
