"""Language-modelling loss of a model on plain texts (perplexity = exp(loss))."""
from __future__ import annotations

from pathlib import Path

import torch

from ..train import batch_loss, collate, encode


def read_lines(path: str | Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file."""
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@torch.no_grad()
def mean_loss(model, tokenizer, texts: list[str], batch_size: int = 8) -> float:
    """Token-weighted mean next-token loss (nats) over ``texts``, each scored whole (BOS-free as
    tokenized by ``tada.train.encode`` in ``lm`` mode), in length-sorted batches."""

    examples = sorted((encode(tokenizer, {"text": t}, "lm", 10**6) for t in texts), key=lambda e: len(e.input_ids))
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(examples), batch_size):
            loss, n = batch_loss(model, collate(examples[start:start + batch_size], tokenizer.pad_token_id),
                                 mask_logits=False)
            total += loss.item() * n
            count += n
    finally:
        model.train(was_training)
    return total / max(count, 1)
