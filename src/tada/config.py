"""Merge configuration files: the YAML that ``tada merge --config`` and ``tada.merge(config=…)`` read.

Its keys are the merge's options (:class:`tada.options.MergeOptions`, the field names), ``task``,
``domain``, ``method`` and ``parameters:`` (the method's parameters); for K domain adapters a
``domains:`` list of ``{adapter, probe | stats, revision, weight}`` (with weights, ``task_weight``
gives the task adapter's). Relative paths are relative to the YAML's folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import TadaError
from .io.files import load_yaml_mapping
from .options import MERGE_OUTPUT_KEYS, MERGE_PATH_KEYS, MERGE_YAML_KEYS, closest


DOMAIN_ENTRY_KEYS = ("adapter", "probe", "stats", "revision", "weight")


def load_merge_config(path: str | os.PathLike) -> dict:
    """A merge YAML: the same keys as the CLI options (underscores), plus ``parameters:``, and for
    K domain adapters ``domains:``, a list of ``{adapter, probe | stats, revision, weight}`` (with
    ``weight``s, ``task_weight`` gives the task adapter's)."""
    data = load_yaml_mapping(path, "config file", MERGE_PATH_KEYS, MERGE_OUTPUT_KEYS)
    allowed = {*MERGE_YAML_KEYS, "domains", "task_weight"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TadaError(f"{path}: unknown key(s) {', '.join(unknown)}{closest(unknown[0], allowed)}; "
                        f"allowed: {', '.join(sorted(allowed))}")
    if "domains" in data:
        data.update(_domains(data.pop("domains"), data.pop("task_weight", None), Path(path).parent, str(path)))
    elif "task_weight" in data:
        raise TadaError(f"{path}: task_weight goes with a domains: list whose entries have a weight")
    if "parameters_weights" in data:
        data["parameters"] = {"weights": data.pop("parameters_weights"), **(data.get("parameters") or {})}
    return data


def _domains(entries, task_weight, folder: Path, where: str) -> dict:
    """``domains:`` → the ``domain``/``domain_probe``/``domain_stats``/``domain_revision`` lists
    (paths relative to the YAML's folder, as the other paths) and, with weights, ``parameters.weights``."""
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise TadaError(f"{where}: domains: must be a list of mappings {{adapter, probe | stats, weight}}")
    out: dict = {"domain": [], "domain_probe": [], "domain_stats": [], "domain_revision": []}
    weights = []
    for i, e in enumerate(entries, 1):
        unknown = sorted(set(e) - set(DOMAIN_ENTRY_KEYS))
        if unknown or "adapter" not in e:
            raise TadaError(f"{where}: domains entry {i}: needs adapter; allowed keys: {', '.join(DOMAIN_ENTRY_KEYS)}")
        for key, target in (("adapter", "domain"), ("probe", "domain_probe"), ("stats", "domain_stats")):
            value = e.get(key)
            if isinstance(value, str) and not Path(value).is_absolute() and (folder / value).exists():
                value = str(folder / value)
            out[target].append(value)
        out["domain_revision"].append(e.get("revision"))
        weights.append(e.get("weight"))
    out = {k: v for k, v in out.items() if any(x is not None for x in v)}
    if any(w is not None for w in weights):
        if any(w is None for w in weights) or task_weight is None:
            raise TadaError(f"{where}: give a weight for every domains entry and task_weight, or none")
        out["parameters_weights"] = (float(task_weight), *(float(w) for w in weights))
    return out
