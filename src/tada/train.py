"""Train one LoRA adapter on a JSONL file with PEFT + transformers (CPU or GPU).

Data modes:

* ``lm``: each line is ``{"text": ...}``; the loss covers every token of the text.
* ``answer``: each line is ``{"prompt": ..., "answer": ...}``; the input is the prompt's tokens
  followed by the answer's tokens (tokenized separately, exactly as an evaluator scores the next
  token after the prompt) and the loss covers only the answer tokens. A too-long example loses the
  start of its prompt, never its answer.

Prompt format: by default the data's text is the model's input as it is (the ``raw`` prompt; the
tokenizer adds its own special tokens, e.g. BOS). With ``chat_template`` (answer mode) each example
is rendered through the tokenizer's chat template instead: the prompt as the user turn with the
generation prompt, then the answer as the assistant turn (with the template's end of turn), the loss
on the assistant part only. Either way the adapter folder records it in ``tada_prompt.json``
(:func:`prompt_record`; read by ``tada eval`` and carried into merges and their model cards).

Schedule: AdamW, linear warm-up over the first 5% of the steps, then cosine decay to zero.
Batches are length-bucketed: each epoch shuffles the examples, sorts them by length inside chunks
of 64 batches, cuts the chunks into batches (right padding) and shuffles the batches, all with one
``random.Random(seed)``; epochs repeat until ``steps`` optimizer steps are done. With
``torch.manual_seed(seed)`` for the LoRA initialisation and dropout, two CPU runs with the same
arguments give identical adapter weights.

The output folder is a standard PEFT adapter (``adapter_config.json`` +
``adapter_model.safetensors``) plus ``train_args.json`` (arguments, data sha256, summary,
library versions) and ``tada_prompt.json`` (the prompt format). ``tada train --help`` runs it from the command line.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ._util import PROGRESS_DELAY_S, file_sha256
from .errors import TadaError
from .adapters import PROMPT_NAME
from .options import build, TrainOptions
from .io.atomic import write_text
from .io.files import parse_json_object
from .models import BaseSpec, load_model, load_tokenizer

MODES = ("lm", "answer")
FIELDS = {"lm": ("text",), "answer": ("prompt", "answer")}
WARMUP_FRACTION = 0.05
BATCHES_PER_CHUNK = 64
IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One tokenized training example: ``labels`` is ``IGNORE`` where no loss is taken."""

    input_ids: list[int]
    labels: list[int]


def read_records(path: str | Path, mode: str) -> list[tuple[int, dict]]:
    """Parse the JSONL file for ``mode`` into ``(line number, record)`` pairs, blank lines skipped;
    any bad line is a one-line :class:`TadaError`."""
    if mode not in MODES:
        raise TadaError(f"unknown training mode {mode!r}; choose one of {', '.join(MODES)}")
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TadaError(f"cannot read training data {path}: {exc}") from None
    records = [(number, _parse_line(path, number, line, mode))
               for number, line in enumerate(lines, 1) if line.strip()]
    if not records:
        raise TadaError(f"{path}: no training examples (the file is empty)")
    return records


def _parse_line(path: Path, number: int, line: str, mode: str) -> dict:
    """One JSONL line → a dict holding the string fields ``mode`` needs."""
    record = parse_json_object(line, f"{path}:{number}")
    for field in FIELDS[mode]:
        if not isinstance(record.get(field), str):
            raise TadaError(f"{path}:{number}: mode {mode!r} needs a string field {field!r}")
    return record


def chat_parts(tokenizer, prompt: str, answer: str) -> tuple[str, str]:
    """One example through the tokenizer's chat template, split where the answer starts: the user
    turn with the generation prompt, and the rest (the assistant's answer and the end of its turn)."""
    if not getattr(tokenizer, "chat_template", None):
        raise TadaError("`chat_template`: this tokenizer has no chat template")
    user = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": answer}], tokenize=False)
    if not full.startswith(head):
        raise TadaError("`chat_template`: this tokenizer's chat template does not render the assistant turn "
                        "after its generation prompt; train on the raw prompt")
    return head, full[len(head):]


def encode(tokenizer, record: dict, mode: str, max_length: int, chat: bool = False) -> Example:
    """Tokenize one record; in ``answer`` mode the prompt tokens get ``IGNORE`` labels. ``chat``
    (answer mode): through the chat template (:func:`chat_parts`), whose text carries the special
    tokens, so the tokenizer adds none."""
    if mode == "lm":
        ids = tokenizer(record["text"])["input_ids"][:max_length]
        return Example(ids, list(ids))
    if chat:
        head, rest = chat_parts(tokenizer, record["prompt"], record["answer"])
        prompt = tokenizer(head, add_special_tokens=False)["input_ids"]
        answer = tokenizer(rest, add_special_tokens=False)["input_ids"][:max_length]
    else:
        prompt = tokenizer(record["prompt"])["input_ids"]
        answer = tokenizer(record["answer"], add_special_tokens=False)["input_ids"][:max_length]
    prompt = prompt[max(0, len(prompt) + len(answer) - max_length):]
    return Example(prompt + answer, [IGNORE] * len(prompt) + answer)


def encode_file(tokenizer, path: str | Path, mode: str, max_length: int, chat: bool = False) -> list[Example]:
    """Read and tokenize a whole JSONL file; an example with no token to learn is an error."""
    examples = []
    for number, record in read_records(path, mode):
        example = encode(tokenizer, record, mode, max_length, chat)
        if all(label == IGNORE for label in example.labels[1:]):
            raise TadaError(f"{path}:{number}: nothing to learn (empty answer or text under 2 tokens)")
        examples.append(example)
    return examples


def prompt_record(record: dict, mode: str, tokenizer=None, chat: bool = False) -> dict:
    """What ``tada_prompt.json`` holds for an adapter trained on data whose first record is ``record``:
    ``format`` (``raw`` or ``chat_template``), ``mode``, ``template`` (raw: how the data's fields
    make the input, e.g. ``{prompt}{answer}``: the answer appended with nothing between; chat: the
    tokenizer's chat template), ``add_special_tokens`` (whether the tokenizer adds its own, e.g.
    BOS, to the prompt's text), ``example`` (the record's prompt exactly as the model saw it),
    ``example_prompt`` and ``example_answer`` (the record's fields; chat: the answer's rendering)."""
    if not chat:
        if mode == "lm":
            return {"format": "raw", "mode": mode, "template": "{text}", "add_special_tokens": True,
                    "example": record["text"]}
        return {"format": "raw", "mode": mode, "template": "{prompt}{answer}", "add_special_tokens": True,
                "example": record["prompt"], "example_prompt": record["prompt"], "example_answer": record["answer"]}
    head, rest = chat_parts(tokenizer, record["prompt"], record["answer"])
    template = tokenizer.get_chat_template() if hasattr(tokenizer, "get_chat_template") else tokenizer.chat_template
    return {"format": "chat_template", "mode": mode, "template": template, "add_generation_prompt": True,
            "add_special_tokens": False, "example": head, "example_prompt": record["prompt"],
            "example_answer": rest}


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of index batches: shuffle, sort by length within chunks, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * BATCHES_PER_CHUNK
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch into ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    width = max(len(e.input_ids) for e in examples)
    ids, mask, labels = [], [], []
    for e in examples:
        pad = width - len(e.input_ids)
        ids.append(e.input_ids + [pad_id] * pad)
        mask.append([1] * len(e.input_ids) + [0] * pad)
        labels.append(e.labels + [IGNORE] * pad)
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels)}


def lr_factor(step: int, steps: int) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based): warm-up, then cosine."""
    warmup = max(1, round(WARMUP_FRACTION * steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_loss(model, batch: dict[str, torch.Tensor], mask_logits: bool) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over the labelled tokens, and how many there were.

    With ``mask_logits`` the model projects onto the vocabulary only the positions that carry a
    label (a boolean ``logits_to_keep``), which saves most of the LM head in ``answer`` mode.
    """
    targets_all = batch["labels"][:, 1:]
    keep = torch.zeros_like(batch["labels"], dtype=torch.bool)
    keep[:, :-1] = targets_all != IGNORE
    targets = targets_all[keep[:, :-1]]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if mask_logits:
        logits = model(**inputs, logits_to_keep=keep).logits
    else:
        logits = model(**inputs).logits[keep]
    return torch.nn.functional.cross_entropy(logits.float(), targets), int(targets.numel())


def supports_logit_mask(model) -> bool:
    """Whether the model's forward accepts a boolean ``logits_to_keep`` (transformers ≥ 5)."""
    return hasattr(sys.modules.get(type(model).__module__), "slice_logits_to_keep")


def train_lora(base: BaseSpec, data: str | Path, out: str | Path, **options: Any) -> dict:
    """Train a LoRA adapter on ``data`` and save it to ``out``; returns a summary dict.
    ``options``: the fields of :class:`tada.options.TrainOptions` (``target_modules``: a
    comma-separated string or a sequence of leaf names).

    The summary holds ``steps``, ``final_loss`` (mean over the last 10% of the steps),
    ``tokens`` (input tokens processed, padding excluded), ``seconds`` and ``tokens_per_s``.
    """
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    o: TrainOptions = build(TrainOptions, options, "tada.train")
    mode, r, alpha, steps, lr, batch_size = o.mode, o.r, o.alpha, o.steps, o.lr, o.batch_size
    max_length, seed, device, dropout, progress = o.max_length, o.seed, o.device, o.dropout, o.progress
    chat = o.chat_template
    target_modules = leaf_names(o.target_modules)
    arguments = {"base": {"path": base.path, "gguf_file": base.gguf_file, "revision": base.revision,
                          "name": base.name},
                 "data": str(data), "out": str(out), "mode": mode, "r": r, "alpha": alpha,
                 "target_modules": list(target_modules), "steps": steps, "lr": lr,
                 "batch_size": batch_size, "max_length": max_length, "seed": seed,
                 "device": device, "dropout": dropout, "chat_template": chat}
    tokenizer = load_tokenizer(base)
    examples = encode_file(tokenizer, data, mode, max_length, chat)
    prompt = prompt_record(read_records(data, mode)[0][1], mode, tokenizer, chat)

    torch.manual_seed(seed)
    model = load_model(base, device=device, dtype="float32")
    model.config.use_cache = False
    mask_logits = supports_logit_mask(model)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                        target_modules=list(target_modules), task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, config)
    except ValueError as exc:
        raise TadaError(f"cannot add LoRA to {base.name}: {str(exc).splitlines()[0]}") from None
    name_base(model, base.name)
    model.train()

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps))
    losses: list[float] = []
    tokens = 0
    rng = random.Random(seed)
    bar = tqdm(total=steps, disable=not progress, delay=PROGRESS_DELAY_S, desc=f"train {mode}", unit="step")
    started = time.perf_counter()
    while len(losses) < steps:
        for indices in bucketed_batches([len(e.input_ids) for e in examples], batch_size, rng):
            batch = {k: v.to(model.device) for k, v in
                     collate([examples[i] for i in indices], tokenizer.pad_token_id).items()}
            loss, _ = batch_loss(model, batch, mask_logits)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            tokens += int(batch["attention_mask"].sum())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if len(losses) == steps:
                break
    bar.close()
    seconds = time.perf_counter() - started

    tail = losses[-max(1, steps // 10):]
    summary = {"steps": steps, "final_loss": sum(tail) / len(tail), "tokens": tokens,
               "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
               "examples": len(examples), "first_loss": losses[0]}
    _save(model, out, arguments, data, summary, prompt)
    return summary


def name_base(model, name: str) -> None:
    """Name the base the way the adapter should record it (``adapter_config.json`` and the model
    card PEFT writes), instead of a local path or cache folder."""
    model.peft_config["default"].base_model_name_or_path = name
    base = model.get_base_model()
    base.config._name_or_path = name
    base.name_or_path = name


def leaf_names(target_modules: str | Sequence[str]) -> tuple[str, ...]:
    """``"q_proj,v_proj"`` or a sequence of names → ``("q_proj", "v_proj")``."""
    names = target_modules.split(",") if isinstance(target_modules, str) else list(target_modules)
    return tuple(t.strip() for t in names if t.strip())


def _save(model, out: str | Path, arguments: dict, data: str | Path, summary: dict, prompt: dict) -> None:
    """Write the PEFT folder, ``train_args.json`` and ``tada_prompt.json`` next to it."""
    import peft
    import transformers

    out = Path(out)
    # The vocabulary is never resized, so the embeddings need no saving (and PEFT's "auto" check
    # would look the base up on the hub).
    model.save_pretrained(out, save_embedding_layers=False)
    record = {"arguments": arguments, "data_sha256": file_sha256(data), "summary": summary,
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                           "peft": peft.__version__},
              "torch_threads": torch.get_num_threads()}
    write_text(out / "train_args.json", json.dumps(record, indent=2) + "\n")
    write_text(out / PROMPT_NAME, json.dumps(prompt, indent=2) + "\n")
