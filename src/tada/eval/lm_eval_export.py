"""A tada multiple-choice set as an lm-evaluation-harness task (``tada datasets --export-lm-eval``).

Writes ``<task>.yaml`` and ``<task>.jsonl`` into a folder; ``lm_eval --include_path DIR --tasks
<task>`` (lm-evaluation-harness 0.4) then runs the set as a ``multiple_choice`` task with the same
prompt and choices as tada's zero-shot cloze scoring (:mod:`tada.eval.mcq`): the context is
``Question: <question>\\nAnswer:``, each choice an option scored as the continuation ``" " + option``
(``target_delimiter: " "``), and its ``acc`` and ``acc_norm`` are ``tada eval --scoring cloze
--shots 0``'s ``accuracy`` and ``acc_norm``. Each JSONL record carries the rendered context
(``query``), so the task does not depend on how lm-eval would template the question text.

Few-shot prompts are not exported: lm-eval draws its own shots (its sampler, its order), and it
tokenizes the whole prompt at once where tada tokenizes the shared prefix apart, so per-question
parity holds zero-shot. The data file is named relative to the YAML's folder: lm-eval hands
``dataset_kwargs`` to ``datasets.load_dataset``, which resolves a relative path from the working
directory, so the YAML loads it through ``custom_dataset: !function tada_lm_eval_data.load`` (a
small module written beside it; lm-eval imports ``!function`` modules from the YAML's folder,
``lm_eval/utils.py`` ``import_function``), which resolves it from its own folder: the exported
folder can be moved or shared.

The same number in tada: ``tada eval --dataset <dataset> --scoring cloze --shots 0`` (and ``--first
N`` for lm-eval's ``--limit N``: both take the first N questions) — :func:`tada_eval_flags`.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import TadaError
from ..io.atomic import write_text
from .datasets import MCQDataset, load_dataset_by_name
from .mcq import question_text

#: The lm-evaluation-harness release the export is written for (and tested against).
LM_EVAL_TESTED = "0.4.13"


def task_name(dataset: str) -> str:
    """``tada_<name>``: a .jsonl file's stem or the registry name, characters outside
    ``[A-Za-z0-9_]`` as ``_``."""
    name = Path(dataset).stem if dataset.endswith(".jsonl") else dataset
    return "tada_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


#: The module the YAML's ``custom_dataset`` names: reads ``data_files`` relative to its own folder.
LOADER_NAME = "tada_lm_eval_data"
LOADER = '''"""Written by `tada datasets --export-lm-eval`: lm-eval's `custom_dataset` for the tasks in this
folder; their `data_files` are relative to this folder (the folder can be moved)."""
from pathlib import Path


def load(data_files=None, **_metadata):
    import datasets

    here = Path(__file__).resolve().parent
    return datasets.load_dataset("json", data_files={split: str(here / f) for split, f in data_files.items()})
'''


def tada_eval_flags(dataset: str, limit: int | None = None) -> str:
    """The ``tada eval`` flags that score an exported task as lm-eval does (zero-shot cloze;
    lm-eval's ``--limit N`` takes the first N documents, tada's ``--first N``)."""
    first = f" --first {limit}" if limit else " [--first N for lm_eval --limit N]"
    return f"tada eval --dataset {dataset} --scoring cloze --shots 0{first}"


def task_config(task: str, data_file: str) -> dict:
    """The lm-eval task YAML's content for the records written by :func:`export_lm_eval`
    (``data_file``: relative to the YAML's folder; ``custom_dataset`` is added as a tag)."""
    return {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "query",  # a column: lm-eval takes the record's value as it is
        "doc_to_choice": "choices",
        "doc_to_target": "answer",
        "target_delimiter": " ",
        "num_fewshot": 0,
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
        "metadata": {"version": 1.0, "exported_by": "tada datasets --export-lm-eval",
                     "lm_eval_tested": LM_EVAL_TESTED},
    }


def export_records(ds: MCQDataset) -> list[dict]:
    """One lm-eval document per test question, in dataset order."""
    return [{"id": q.id, "query": question_text(q, "cloze"), "choices": list(q.options), "answer": q.answer,
             "question": q.question} for q in ds.test]


def export_lm_eval(out_dir: str | os.PathLike, dataset: str, *, split_seed: int = 0) -> tuple[str, Path, Path]:
    """Write ``dataset`` (a registered name or a .jsonl file; its test questions as ``tada eval``
    loads them with ``--seed split_seed``) into ``out_dir`` as an lm-eval task. Returns (task name,
    YAML path, JSONL path)."""
    import yaml

    ds = load_dataset_by_name(dataset, split_seed=split_seed)
    if not ds.test:
        raise TadaError(f"dataset {dataset} has no questions")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TadaError(f"{out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    task = task_name(dataset)
    data, config = out / f"{task}.jsonl", out / f"{task}.yaml"
    write_text(data, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in export_records(ds)))
    write_text(out / f"{LOADER_NAME}.py", LOADER)
    text = (f"# {dataset}: {len(ds.test)} questions, tada's zero-shot cloze prompt (tada datasets --export-lm-eval)\n"
            f"# the same number in tada: {tada_eval_flags(dataset)}\n")
    body = yaml.safe_dump(task_config(task, data.name), sort_keys=False, allow_unicode=True)
    write_text(config, text + f"custom_dataset: !function {LOADER_NAME}.load\n" + body)
    return task, config, data
