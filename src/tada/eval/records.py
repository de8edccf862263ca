"""The record of one evaluated cell: what ``tada eval`` writes and what ``tada bench`` caches.

A record holds ``key`` (everything the score depends on: base, adapter weights' sha256, dataset,
scoring and its settings), the score with n and its 95% interval, what was evaluated, the
package versions and the cell's own wall time; the per-example predictions go beside it as JSONL.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._util import file_sha256
from ..io.atomic import write_text
from ..report import versions


def adapter_sha256(adapter: str | None) -> str | None:
    """The sha256 of an adapter folder's weights (None for the base model)."""
    return file_sha256(Path(adapter) / "adapter_model.safetensors") if adapter else None


def text_cell_key(*, base: str, adapter: str | None, dataset: str, scoring: str, shots: int, seed: int,
                  limit: int | None, chat_template: bool, model_dtype: str | None, first: int | None = None) -> dict:
    """The key of a language cell (a multiple-choice set scored one way on base + adapter).
    ``first`` (the first N questions instead of a seeded sample) is in the key only when given, so
    the keys of cells cached before it existed do not change."""
    key = {"base": base, "adapter_sha256": adapter_sha256(adapter), "dataset": dataset, "scoring": scoring,
           "shots": shots, "seed": seed, "limit": limit, "chat_template": chat_template,
           "model_dtype": model_dtype or "float32"}
    if first is not None:
        key["first"] = first
    return key


def write_predictions(path: Path, predictions: list) -> None:
    """Per-example predictions, one JSON object per line (written whole, then renamed)."""
    write_text(path, "".join(json.dumps(p) + "\n" for p in predictions))


def cell_record(key: dict, result: Any, *, seconds: float, **fields: Any) -> dict:
    """The record of one evaluated cell, as the benchmarks cache it and ``tada eval`` writes it:
    ``key`` (the cell's inputs), the score with n and its 95% interval, any extra ``fields``
    (row, dataset, scoring…), the evaluation's metrics and token counts when it has them, the
    package versions and the cell's own wall time."""
    record = {"key": key, **fields, "accuracy": result.accuracy, "n": result.n, "ci": list(result.ci)}
    for name in ("metrics", "tokens"):
        if hasattr(result, name):
            record[name] = getattr(result, name)
    return {**record, "versions": versions(), "seconds": round(seconds, 2)}
