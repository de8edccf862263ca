"""Merge methods: one small unit per method, registered by name, each declaring its parameters
(:mod:`tada.methods.base` holds the shared types and the registry; each method module registers
itself when imported, which this package does once)."""
from __future__ import annotations

from . import dare, knots_core, linear, magnitude_prune, svd, tada, ties, tsv_iso  # noqa: F401  (registration)
from ..errors import TadaError
from ..options import closest
from .base import (REGISTRY, Calibrate, MethodSpec, ModuleInput, ModuleResult, check_weights, make_params,
                   register)

__all__ = ["REGISTRY", "Calibrate", "MethodSpec", "ModuleInput", "ModuleResult", "check_weights", "get_method",
           "make_params", "method_names", "register", "bench_methods", "row_label", "INPUT_LABELS",
           "register_row_label"]


def get_method(name: str) -> MethodSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise TadaError(f"unknown method {name!r}{closest(name, REGISTRY)}; choose one of "
                        f"{', '.join(sorted(REGISTRY))}") from None


def method_names() -> list[str]:
    return sorted(REGISTRY)


def bench_methods() -> tuple[str, ...]:
    """The methods of a benchmark's default grid, in the paper's Table 3 row order."""
    return tuple(sorted((n for n, s in REGISTRY.items() if s.row is not None), key=lambda n: REGISTRY[n].row or 0))


#: Table row names of the rows that are not merges (a bench configuration adds its own rows'
#: names: each domain adapter alone, reference rows).
INPUT_LABELS = {"base": "Base model", "task": "Task only", "domain": "Domain only"}


def register_row_label(row: str, label: str) -> None:
    """Name a benchmark row that is not a registered method (``row_label`` returns it)."""
    INPUT_LABELS[row] = label


def row_label(row: str) -> str:
    """The table name of a benchmark row: an input row, a registered method, or the row key itself."""
    if row in INPUT_LABELS:
        return INPUT_LABELS[row]
    spec = REGISTRY.get(row)
    return spec.label if spec and spec.label else row
