"""The cached benchmark grid that the language and vision benchmarks (and ``tada eval``) share.

A grid is rows (base, task only, domain only, one merged adapter per method setting) × cells
(a dataset and a scoring). Everything is cached on disk under one folder, keyed by its inputs, so
an interrupted run resumes and a new method computes only itself:

- ``adapters/<row>/`` holds a merged adapter, with ``adapters/<row>.key.json`` beside it: the
  contents of its inputs, the method and all its parameters (defaults included);
- ``results/<row>/<dataset>.<scoring>.json`` holds a cell's record (:func:`tada.eval.records.cell_record`), whose
  ``key`` names everything the score depends on; a cell is recomputed only when its key changed;
- ``results.json`` holds the whole run.

Every JSON file is written atomically. The benchmarks supply only the evaluation of a cell and the
layout of their tables.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._util import file_sha256
from ..io.atomic import write_json
from ..api.merging import merge
from ..methods import get_method, make_params
from ..eval.records import adapter_sha256, cell_record, write_predictions
from ..report import jsonable

__all__ = ["Grid", "adapter_sha256", "cell_record", "input_identity", "merge_key", "merge_is_current",
           "merge_stamp", "write_predictions"]


def input_identity(source: str | list | None) -> str | None:
    """What a merge input is: the sha256 of a local file (of a folder's adapter weights), else the
    name itself (a hub id, a named image set)."""
    if source is None:
        return None
    if isinstance(source, (list, tuple)):  # K domain adapters / their probes
        return [input_identity(s) for s in source]  # type: ignore[return-value]
    path = Path(source)
    weights = path / "adapter_model.safetensors"
    if weights.is_file():
        return "sha256:" + file_sha256(weights)
    if path.is_file():
        return "sha256:" + file_sha256(path)
    return str(source)


#: The :class:`tada.options.MergeOptions` a bench configuration may set for every merge
#: (``merge_options:``); the base, probes, output and device are the bench's own keys.
BENCH_MERGE_OPTIONS = ("probe_n", "probe_seed", "max_length", "probe_site", "batch_size", "rank", "max_rank", "dtype",
                       "model_dtype", "allow_partial")


def merge_key(task: str, domain: str | list[str], method: str, params: dict | None, *, base: str,
              probes: list, merge_options: dict | None = None) -> dict:
    """Everything a cached merged adapter depends on: its inputs' contents, the method and all its
    parameters (defaults included, so a changed default — TaDA's ``delta: auto`` — is a new key),
    the base, the probes and the bench's other merge options (when it sets any)."""
    key = {"task": input_identity(task), "domain": input_identity(domain), "method": method,
           "params": jsonable(make_params(get_method(method), params,
                                          n_inputs=1 + (len(domain) if isinstance(domain, list) else 1))),
           "base": base,
           "probes": [input_identity(p) for p in probes]}
    if merge_options:
        key["merge_options"] = jsonable(dict(sorted(merge_options.items())))
    return key


def merge_stamp(folder: Path) -> Path:
    """Where the key of a cached merge is kept: beside its folder."""
    return folder.with_name(f"{folder.name}.key.json")


def merge_is_current(folder: Path, key: dict) -> bool:
    """Whether ``folder`` holds a finished merge made from exactly ``key``'s inputs."""
    stamp = merge_stamp(folder)
    if not ((folder / "tada_report.json").is_file() and stamp.is_file()):
        return False
    try:
        return json.loads(stamp.read_text()) == json.loads(json.dumps(key))
    except ValueError:
        return False


class Grid:
    """The on-disk cache of one benchmark run, rooted at ``out``."""

    def __init__(self, out: str | Path, *, progress: bool = True):
        self.out, self.progress = Path(out), progress

    def merged(self, row: str, task: str, domain: str | list[str], method: str, params: dict | None, *,
               base_name: str, probes: dict[str, Any], **merge_options: Any) -> str:
        """The folder of row ``row``'s merged adapter, merging it first unless a finished merge of
        exactly these inputs is there. ``probes``: the probe/stats options of :func:`tada.merge`
        (their files are part of the key); ``base_name`` names the base in the key;
        ``merge_options``: the other options of :func:`tada.merge`."""
        folder = self.out / "adapters" / row
        tuned = {k: v for k, v in merge_options.items() if k in BENCH_MERGE_OPTIONS}
        key = merge_key(task, domain, method, params, base=base_name, probes=list(probes.values()), merge_options=tuned)
        if not merge_is_current(folder, key):
            merge(task, domain, method=method, params=params, out=folder, force=True, progress=self.progress,
                  **{k: v for k, v in probes.items() if v is not None}, **merge_options)
            write_json(merge_stamp(folder), key)
        return str(folder)

    def result_path(self, row: str, dataset: str, suffix: str) -> Path:
        """``results/<row>/<dataset>.<suffix>`` (``/`` and ``:`` in the dataset's name become ``_``)."""
        safe = dataset.replace("/", "_").replace(":", "_")
        return self.out / "results" / row / f"{safe}.{suffix}"

    @staticmethod
    def cached(path: Path, key: dict) -> dict | None:
        """The record at ``path`` if it was computed from exactly ``key``."""
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except ValueError:
            return None
        return record if record.get("key") == json.loads(json.dumps(key)) else None

    @staticmethod
    def save(path: Path, record: dict) -> dict:
        write_json(path, record)
        return record

    def finish(self, config: Any, records: list[dict], **extra: Any) -> None:
        """``results.json``: the configuration, every record and anything else the run reports."""
        write_json(self.out / "results.json", {"config": config, "records": records, **extra})
