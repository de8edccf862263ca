"""Local JSONL files of questions (the format is in the :mod:`tada.eval.datasets` docstring), the
few-shot selection every dataset uses, and the seeded hold-out of a few-shot pool from a test list."""
from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..._util import file_sha256
from ...errors import TadaError
from ...io.atomic import atomic_file
from ...io.files import parse_json_object
from .types import MCQ, MCQDataset, make_mcq, normalize_question, parse_answer

#: Questions held out of the test set (seeded) as the few-shot pool where a source has no dev split.
HELDOUT_FEWSHOT = 3


# --------------------------------------------------------------------------- local JSONL


def load_jsonl(path: str | Path) -> list[MCQ]:
    """The questions of a local JSONL file (format in the :mod:`tada.eval.datasets` docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TadaError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TadaError(f"{path}: cannot be read as UTF-8 text ({type(e).__name__})") from None
    questions: list[MCQ] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        q = _record_to_mcq(parse_json_object(line, where), f"{path.stem}-{number}", where)
        if q.id in seen:
            raise TadaError(f"{where}: duplicate id {q.id!r} (first on line {seen[q.id]})")
        seen[q.id] = number
        questions.append(q)
    if not questions:
        raise TadaError(f"{path}: no questions (the file is empty)")
    return questions


def write_jsonl(path: str | Path, questions: Iterable[MCQ]) -> None:
    """Write ``questions`` in the local JSONL format (atomically: a temporary file, then rename)."""
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for q in questions:
            record: dict[str, Any] = {"id": q.id, "question": q.question, "options": list(q.options),
                                      "answer": q.answer}
            if q.subject is not None:
                record["subject"] = q.subject
            if q.format is not None:
                record["prompt"] = q.prompt
                record["format"] = {"regex": q.format.regex, "template": q.format.template}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _record_to_mcq(obj: dict, default_id: str, where: str) -> MCQ:
    for key in ("question", "options", "answer"):
        if key not in obj:
            raise TadaError(f"{where}: missing field {key!r}")
    options = obj["options"]
    if not isinstance(options, list):
        raise TadaError(f"{where}: 'options' must be a list of strings")
    if len(options) < 2:
        raise TadaError(f"{where}: a question needs at least 2 options, got {len(options)}")
    raw_id = obj.get("id", default_id)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise TadaError(f"{where}: 'id' must be a string")
    answer = parse_answer(obj["answer"], len(options), where)
    return make_mcq(str(raw_id), obj["question"], options, answer, obj.get("subject"), where=where,
                    prompt=obj.get("prompt"), format=obj.get("format"))


def load_local(path: Path) -> MCQDataset:
    test = load_jsonl(path)
    meta: dict[str, Any] = {"source": "jsonl", "path": str(path.resolve()), "sha256": file_sha256(path)}
    dev = path.with_name(f"{path.stem}.dev.jsonl")
    if dev.is_file() and dev != path:
        fewshot = load_jsonl(dev)
        meta.update(fewshot_source=f"sibling file {dev.name}", fewshot_path=str(dev.resolve()),
                    fewshot_sha256=file_sha256(dev), fewshot_from_test=False)
    else:
        fewshot = test
        meta.update(fewshot_source="the test file itself (the asked question is always excluded)",
                    fewshot_from_test=True)
    meta.update(n_test=len(test), n_fewshot=len(fewshot))
    return MCQDataset(name=path.stem, test=test, fewshot=fewshot, meta=meta)


# --------------------------------------------------------------------------- few-shot


def fewshot_for(dataset: MCQDataset, k: int, seed: int, exclude_id: str | None) -> list[MCQ]:
    """``k`` few-shot examples for the question ``exclude_id``, deterministic in ``seed``.

    The pool is shuffled once with ``random.Random(seed)`` and the first ``k`` items that are
    neither the asked question (same id) nor the same question text (normalized) are taken; so
    every question whose own text is not among those first items gets the same shots, which
    keeps a shared k-shot prefix cacheable.
    """
    if k < 0:
        raise TadaError(f"the number of few-shot examples must be >= 0, got {k}")
    if k == 0:
        return []
    asked = next((q for q in dataset.test if q.id == exclude_id), None) if exclude_id is not None else None
    banned = normalize_question(asked.question) if asked is not None else None
    picked: list[MCQ] = []
    for q in _pool_order(dataset, seed):
        if q.id != exclude_id and (banned is None or normalize_question(q.question) != banned):
            picked.append(q)
            if len(picked) == k:
                return picked
    raise TadaError(f"dataset {dataset.name}: asked for {k} few-shot examples but its pool has only "
                    f"{len(picked)} usable for question {exclude_id!r}; use fewer shots")


def _pool_order(dataset: MCQDataset, seed: int) -> list[MCQ]:
    order = dataset.pool_orders.get(seed)
    if order is None:
        order = list(dataset.fewshot)
        random.Random(seed).shuffle(order)
        dataset.pool_orders[seed] = order
    return order


def holdout(questions: list[MCQ], n: int, seed: int) -> tuple[list[MCQ], list[MCQ]]:
    """``(rest, held)``: the first ``n`` questions of a ``random.Random(seed)`` shuffle are held
    out (as a few-shot pool); the rest keep their original order."""
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    held_idx = set(order[:n])
    held = [questions[i] for i in order[:n]]
    return [q for i, q in enumerate(questions) if i not in held_idx], held


def holdout_note(n: int, seed: int, total: int) -> str:
    return (f"{n} questions held out of the {total} test questions with random.Random({seed}) "
            f"(first {n} of a shuffle) and removed from the test set")
