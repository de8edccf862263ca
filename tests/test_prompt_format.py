"""The prompt travels with the adapter (issue #26): ``tada train`` records the prompt format in
``tada_prompt.json`` (raw, or ``--chat-template``), ``tada merge`` carries the task adapter's into the
merged folder and its model card ("How to prompt"), and ``tada eval`` follows it unless told
otherwise. On the tiny Llama of ``tiny_base`` with a chat template set here."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

import tada
from tada.adapters import PROMPT_NAME, read_prompt_format
from tada.errors import TadaError
from tada.eval.prompts import format_mcq
from tada.models import BaseSpec, load_tokenizer
from tada.report.card import how_to_prompt, model_card
from tada.train import IGNORE, encode, train_lora

from conftest import run_cli

#: A chat template whose words are all in the tiny word-level vocabulary: the user turn, then the
#: generation prompt " Answer :" and the assistant's answer closed by "</s>".
CHAT = ("<s>{% for m in messages %}{% if m['role'] == 'user' %}Question : {{ m['content'] }}"
        "{% else %} Answer :{{ m['content'] }}</s>{% endif %}{% endfor %}"
        "{% if add_generation_prompt %} Answer :{% endif %}")
WORDS = "the cell gene protein heart brain blood river city king war music".split()


@pytest.fixture(scope="module")
def chat_base(tiny_base, tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("chat_base") / "base"
    shutil.copytree(tiny_base, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT
    tok.save_pretrained(folder)
    return folder


def answer_records(n: int = 8) -> list[dict]:
    return [{"prompt": format_mcq(f"the {WORDS[i % 12]} of a {WORDS[(i * 5) % 12]}",
                                  [WORDS[(i + j) % 12] for j in range(4)]), "answer": " " + "ABCD"[i % 4]}
            for i in range(n)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def eval_set(path: Path, n: int = 5) -> Path:
    return write_jsonl(path, [{"question": f"the {WORDS[i]} of a {WORDS[(i * 5) % 12]}",
                               "options": [WORDS[(i + j) % 12] for j in range(4)], "answer": i % 4}
                              for i in range(n)])


@pytest.fixture(scope="module")
def adapters(chat_base, tmp_path_factory) -> dict[str, Path]:
    """Two tiny answer-mode adapters on the same data: one on the raw prompt, one through the chat
    template; and an lm-mode one (the domain of the merge)."""
    root = tmp_path_factory.mktemp("prompt_adapters")
    data = write_jsonl(root / "answer.jsonl", answer_records())
    spec = BaseSpec(str(chat_base))
    common = dict(mode="answer", r=2, alpha=4, steps=2, batch_size=4, lr=1e-2, progress=False)
    train_lora(spec, data, root / "raw", **common)
    train_lora(spec, data, root / "chat", chat_template=True, seed=1, **common)
    lm = write_jsonl(root / "lm.jsonl", [{"text": " ".join(WORDS[i:i + 5])} for i in range(6)])
    train_lora(spec, lm, root / "domain", mode="lm", r=2, alpha=4, steps=2, batch_size=4, seed=2, progress=False)
    return {"raw": root / "raw", "chat": root / "chat", "domain": root / "domain", "data": data}


# ---- tada train --------------------------------------------------------------------------------

def test_train_records_the_raw_prompt(adapters):
    first = answer_records()[0]
    record = read_prompt_format(adapters["raw"])
    assert record == {"format": "raw", "mode": "answer", "template": "{prompt}{answer}", "add_special_tokens": True,
                      "example": first["prompt"], "example_prompt": first["prompt"], "example_answer": first["answer"]}
    assert json.loads((adapters["raw"] / "train_args.json").read_text())["arguments"]["chat_template"] is False
    domain = read_prompt_format(adapters["domain"])
    assert domain is not None and (domain["format"], domain["mode"], domain["template"]) == ("raw", "lm", "{text}")


def test_train_chat_template_records_the_template(adapters, chat_base):
    tok = load_tokenizer(BaseSpec(str(chat_base)))
    first = answer_records()[0]
    record = read_prompt_format(adapters["chat"])
    assert record is not None and record["format"] == "chat_template" and record["template"] == CHAT
    assert record["example"] == "<s>Question : " + first["prompt"] + " Answer :"
    assert record["example"] == tok.apply_chat_template([{"role": "user", "content": first["prompt"]}],
                                                        tokenize=False, add_generation_prompt=True)
    assert (record["example_prompt"], record["example_answer"]) == (first["prompt"], first["answer"] + "</s>")
    assert json.loads((adapters["chat"] / "train_args.json").read_text())["arguments"]["chat_template"] is True


def test_chat_template_training_tokenizes_differently(chat_base):
    tok = load_tokenizer(BaseSpec(str(chat_base)))
    rec = answer_records()[1]
    raw = encode(tok, rec, "answer", 128)
    chat = encode(tok, rec, "answer", 128, chat=True)
    assert raw.input_ids != chat.input_ids
    assert raw.input_ids == tok(rec["prompt"])["input_ids"] + tok(rec["answer"], add_special_tokens=False)["input_ids"]
    head = tok.apply_chat_template([{"role": "user", "content": rec["prompt"]}], tokenize=False,
                                   add_generation_prompt=True)
    prompt_ids = tok(head, add_special_tokens=False)["input_ids"]
    assert prompt_ids.count(tok.bos_token_id) == 1  # the template's BOS, none added on top
    assert chat.input_ids[:len(prompt_ids)] == prompt_ids
    learned = [t for t in chat.labels if t != IGNORE]
    assert learned == [tok.convert_tokens_to_ids("B"), tok.eos_token_id]  # the answer and the end of the turn
    assert [t for t in raw.labels if t != IGNORE] == [tok.convert_tokens_to_ids("B")]


def test_chat_template_needs_answer_mode_and_a_template(tiny_base, chat_base, adapters, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--base", chat_base, "--data", adapters["data"], "--out", tmp_path / "x",
                           "--mode", "lm", "--chat-template", "--steps", "1")
    assert code == 2 and "--chat-template needs mode answer" in err and not (tmp_path / "x").exists()
    with pytest.raises(TadaError, match="this tokenizer has no chat template"):
        train_lora(BaseSpec(str(tiny_base)), adapters["data"], tmp_path / "y", mode="answer", chat_template=True,
                   steps=1, progress=False)


# ---- tada merge and the model card -------------------------------------------------------------

@pytest.mark.parametrize("task", ["raw", "chat"])
def test_merge_carries_the_task_prompt_into_folder_and_card(adapters, tmp_path, task):
    out = tmp_path / "merged"
    tada.merge(adapters[task], adapters["domain"], method="linear", out=out, progress=False)
    recorded = read_prompt_format(adapters[task])
    assert (out / PROMPT_NAME).is_file() and read_prompt_format(out) == recorded
    card = (out / "README.md").read_text()
    assert "## How to prompt" in card
    assert card.count("## How to prompt") == 1
    section = card.split("## How to prompt", 1)[1]
    assert f"prompt = {json.dumps(recorded['example_prompt'])}" in section
    assert "PeftModel.from_pretrained(base, " in section
    if task == "raw":
        assert "**raw prompt**" in section and 'inputs = tokenizer(prompt, return_tensors="pt")' in section
        assert "apply_chat_template" not in section
    else:
        assert "**chat template**" in section
        assert "tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)" in section
    # `tada card` rewrites the same section from the folder's sidecar
    (out / "README.md").unlink()
    tada.report.card.write_card(out)
    rewritten = (out / "README.md").read_text()
    assert rewritten.split("## How to prompt", 1)[1].split("\n## ")[0] == section.split("\n## ")[0]


def test_merge_without_a_task_prompt_has_no_section(adapters, tmp_path):
    task = tmp_path / "task"
    shutil.copytree(adapters["raw"], task)
    (task / PROMPT_NAME).unlink()
    tada.merge(task, adapters["domain"], method="linear", out=tmp_path / "merged", progress=False)
    assert not (tmp_path / "merged" / PROMPT_NAME).exists()
    assert "How to prompt" not in (tmp_path / "merged" / "README.md").read_text()


def test_card_snippet_runs(adapters, chat_base, tmp_path):
    """The chat snippet, with the base and the adapter's paths filled in, runs and builds exactly the
    prompt the adapter was trained on."""
    record = read_prompt_format(adapters["chat"])
    lines = how_to_prompt(record, str(chat_base))
    code = "\n".join(lines[lines.index("```python") + 1:lines.index("```", lines.index("```python"))])
    code = code.replace("PATH_OR_REPO_OF_THIS_ADAPTER", str(adapters["chat"])).replace("max_new_tokens=32",
                                                                                        "max_new_tokens=2")
    scope: dict = {}
    exec(compile(code, "card-snippet", "exec"), scope)  # noqa: S102 - our own generated snippet
    tok = scope["tokenizer"]
    assert tok.decode(scope["inputs"]["input_ids"][0]) == tok.decode(
        tok(record["example"], add_special_tokens=False)["input_ids"])
    assert how_to_prompt({"format": "other", "template": ""}, "b") == []
    assert "How to prompt" not in model_card({"method": "linear"}, {"base_model_name_or_path": "b"})


# ---- tada eval ---------------------------------------------------------------------------------

def _eval(chat_base, adapter, tmp_path, name, **kw):
    data = eval_set(tmp_path / "q.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res, record, path = tada.evaluate(str(data), base=str(chat_base), adapter=str(adapter), shots=0,
                                          out=str(tmp_path / f"{name}.jsonl"), **kw)
    preds = [json.loads(line) for line in path.read_text().splitlines()]
    return record, preds, [str(w.message) for w in caught if "trained on" in str(w.message)]


def test_eval_follows_the_recorded_prompt(adapters, chat_base, tmp_path):
    record, preds, notes = _eval(chat_base, adapters["chat"], tmp_path, "chat_default")
    assert record["key"]["chat_template"] is True and not notes
    assert record["prompt"] == {"chat_template": True, "source": PROMPT_NAME, "recorded": "chat_template"}
    asked, asked_preds, notes = _eval(chat_base, adapters["chat"], tmp_path, "chat_asked", chat_template=True)
    assert asked["key"] == record["key"] and asked_preds == preds and not notes
    assert asked["prompt"]["source"] == "asked"

    record, preds, notes = _eval(chat_base, adapters["raw"], tmp_path, "raw_default")
    assert record["key"]["chat_template"] is False and not notes
    assert record["prompt"] == {"chat_template": False, "source": PROMPT_NAME, "recorded": "raw"}

    plain = tmp_path / "plain"  # no tada_prompt.json: the raw prompt
    shutil.copytree(adapters["chat"], plain)
    (plain / PROMPT_NAME).unlink()
    record, preds_plain, notes = _eval(chat_base, plain, tmp_path, "plain")
    assert record["key"]["chat_template"] is False and record["prompt"]["source"] == "default" and not notes
    assert preds_plain != asked_preds  # same weights, the other prompt


def test_eval_says_when_the_choice_differs(adapters, chat_base, tmp_path, capsys):
    record, _, notes = _eval(chat_base, adapters["raw"], tmp_path, "raw_chat", chat_template=True)
    assert record["key"]["chat_template"] is True and record["prompt"]["source"] == "asked"
    assert notes == [f"this adapter was trained on the raw prompt (its {PROMPT_NAME}); evaluating with the "
                     "chat template as asked"]
    data = eval_set(tmp_path / "q.jsonl")
    code, out, err = run_cli(capsys, "eval", "--base", chat_base, "--adapter", adapters["chat"], "--dataset", data,
                             "--shots", "0", "--no-chat-template", "--out", tmp_path / "p.jsonl")
    assert code == 0, err
    lines = [line for line in err.splitlines() if "trained on" in line]
    assert lines == [f"warning: this adapter was trained on the chat template (its {PROMPT_NAME}); evaluating "
                     "with the raw prompt as asked"]
    assert "  prompt: raw (as asked)" in out.splitlines()
    assert json.loads((tmp_path / "p.json").read_text())["key"]["chat_template"] is False
    code, out, err = run_cli(capsys, "eval", "--base", chat_base, "--adapter", adapters["chat"], "--dataset", data,
                             "--shots", "0", "--out", tmp_path / "q.jsonl")
    assert code == 0 and "trained on" not in err
    assert "  prompt: chat template (as the adapter's tada_prompt.json records)" in out.splitlines()


# ---- the shipped example adapters --------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["task", "task-format", "domain", "domain-hpo", "domain-go"])
def test_example_adapters_record_the_raw_prompt_they_were_trained_on(name):
    """Each shipped adapter's tada_prompt.json is what `tada train` writes for its training data
    (whose sha256 is the one its train_args.json recorded): the raw prompt."""
    from tada._util import file_sha256
    from tada.train import prompt_record, read_records

    folder = EXAMPLES / "adapters" / name
    args = json.loads((folder / "train_args.json").read_text())
    data = EXAMPLES.parent / args["arguments"]["data"]
    assert file_sha256(data) == args["data_sha256"] and "chat_template" not in args["arguments"]
    record = read_prompt_format(folder)
    assert record == prompt_record(read_records(data, args["arguments"]["mode"])[0][1], args["arguments"]["mode"])
    assert record is not None and record["format"] == "raw"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "adapter_config.json",
                                                       "adapter_model.safetensors", PROMPT_NAME, "train_args.json"]


# ---- tada bench ----------------------------------------------------------------------------------

def test_bench_follows_the_task_adapters_recorded_prompt(adapters, chat_base, tmp_path, monkeypatch):
    """The bench's cells use the prompt the task adapter records (as ``tada eval`` and ``tada tune``
    do): a chat-template task adapter's row scores exactly what ``tada eval`` gives it by default;
    ``chat_template: false`` in the configuration is obeyed, with the warning."""
    from tada.bench.text import Bench, BenchConfig, grid

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    data = str(eval_set(tmp_path / "q.jsonl"))
    cfg = {"name": "chat", "base": str(chat_base), "task": str(adapters["chat"]), "domain": str(adapters["domain"]),
           "datasets": [data], "methods": ["linear"], "rows": ["task"], "shots": 0, "limit": None,
           "out": str(tmp_path / "run")}
    bench = Bench(BenchConfig.from_dict(cfg), progress=False)
    (task_row,) = grid(bench.cfg)
    assert bench.evaluate(task_row, data, "letter")["key"]["chat_template"] is True
    _, want, _ = _eval(chat_base, adapters["chat"], tmp_path, "eval_default")
    got = bench.result_path(task_row, data, "letter").with_suffix(".jsonl").read_text().splitlines()
    assert [json.loads(line) for line in got] == want
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = Bench(BenchConfig.from_dict({**cfg, "chat_template": False, "out": str(tmp_path / "raw")}),
                    progress=False)
        assert raw.chat_template is False
    assert [str(w.message) for w in caught if "trained on" in str(w.message)] == [
        f"this adapter was trained on the chat template (its {PROMPT_NAME}); evaluating with the raw prompt as asked"]
