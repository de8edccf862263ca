"""Measure the two example adapters against the embedded base model (CPU, fp32).

``PYTHONPATH=src python examples/check_adapters.py`` prints, for the base, base + task adapter and
base + domain adapter:

* ``task_val_acc``: held-out letter accuracy on ``data/task_val.jsonl``; the prediction is the
  argmax of the next-token logits after the prompt restricted to the letters, each letter scored
  by the larger of its two tokens (``" A"`` and ``"A"``);
* ``domain_train_loss``: mean per-token loss on a seeded sample of trained HPO definitions;
* ``domain_probe_loss`` / ``general_probe_loss``: the same on ``probes/domain.txt`` (held-out HPO
  definitions) and ``probes/general.txt`` (Wikipedia lead sentences); perplexity = exp(loss).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from tada.eval.lm import mean_loss
from tada.eval.lm import read_lines as lines
from tada.eval.mcq import letter_token_ids
from tada.models import load_model, load_tokenizer, smollm2_gguf
from tada.eval.prompts import LETTERS
from tada.train import Example, collate, read_records

BATCH = 8
OPTIONS = 4


@torch.no_grad()
def letter_accuracy(model, tokenizer, path: Path) -> float:
    """Fraction of questions whose highest-scoring letter is the answer's letter."""
    records = [record for _, record in read_records(path, "answer")]
    candidates = letter_token_ids(tokenizer, OPTIONS)
    correct = 0
    for start in range(0, len(records), BATCH):
        chunk = records[start:start + BATCH]
        prompts = [tokenizer(r["prompt"])["input_ids"] for r in chunk]
        examples = [Example(ids, ids) for ids in prompts]
        batch = collate(examples, tokenizer.pad_token_id)
        last = batch["attention_mask"].sum(1) - 1
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        final = logits[torch.arange(len(chunk)), last]
        scores = torch.stack([final[:, ids].max(1).values for ids in candidates], 1)
        for record, guess in zip(chunk, scores.argmax(1).tolist()):
            correct += record["answer"].strip() == LETTERS[guess]
    return correct / len(records)


def measure(model, tokenizer, sample: list[str]) -> dict[str, float]:
    """Every metric for one model (base or base + adapter)."""
    started = time.perf_counter()
    result = {"task_val_acc": letter_accuracy(model, tokenizer, HERE / "data" / "task_val.jsonl")}
    for name, texts in [("domain_train", sample), ("domain_probe", lines(HERE / "probes" / "domain.txt")),
                        ("general_probe", lines(HERE / "probes" / "general.txt"))]:
        loss = mean_loss(model, tokenizer, texts)
        result[f"{name}_loss"] = loss
        result[f"{name}_ppl"] = math.exp(loss)
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    from peft import PeftModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=Path, default=HERE / "adapters")
    parser.add_argument("--sample", type=int, default=200, help="trained definitions to score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merged", action="append", default=[], metavar="NAME=DIR",
                        help="also measure a merged adapter (repeatable), e.g. tada=tada-demo-output")
    args = parser.parse_args()

    base = smollm2_gguf()
    tokenizer = load_tokenizer(base)
    model = load_model(base, device="cpu", dtype="float32")
    domain = [record["text"] for _, record in read_records(HERE / "data" / "domain_train.jsonl", "lm")]
    sample = random.Random(args.seed).sample(domain, args.sample)

    results = {"base": measure(model, tokenizer, sample)}
    model = PeftModel.from_pretrained(model, args.adapters / "task", adapter_name="task")
    model.load_adapter(args.adapters / "domain", adapter_name="domain")
    names = ["task", "domain"]
    for item in args.merged:
        name, _, folder = item.partition("=")
        model.load_adapter(folder, adapter_name=name)
        names.append(name)
    model.eval()
    for name in names:
        model.set_adapter(name)
        results[f"base+{name}"] = measure(model, tokenizer, sample)
    print(json.dumps(results, indent=2))
    print(table(results))


def table(results: dict[str, dict[str, float]]) -> str:
    """The results as a Markdown table."""
    head = "| model | task_val acc | domain train loss (ppl) | domain probe loss (ppl) | general probe loss (ppl) |"
    rows = [head, "|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['task_val_acc']:.3f} | "
                    + " | ".join(f"{r[k + '_loss']:.3f} ({r[k + '_ppl']:.1f})"
                                 for k in ("domain_train", "domain_probe", "general_probe")) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
