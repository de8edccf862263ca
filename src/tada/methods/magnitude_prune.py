"""Magnitude pruning: trim each delta to its top-density magnitudes, then a weighted sum (SPEC §7)."""
from __future__ import annotations

from dataclasses import dataclass

from . import ModuleInput, ModuleResult, register
from .dense import DenseParams, finish
from .sparsify import magnitude_trim, weighted_sum


@dataclass(frozen=True)
class MagnitudePruneParams(DenseParams):
    weights: tuple[float, float] = (0.5, 0.5)


@register("magnitude_prune", MagnitudePruneParams)
def magnitude_prune(module: ModuleInput, params: MagnitudePruneParams) -> ModuleResult:
    """Top-density trim of each ΔW, weighted sum (linear), truncate to r."""
    trimmed = [magnitude_trim(module.dense(s), params.density) for s in ("task", "domain")]
    return finish(module, weighted_sum(trimmed, list(params.weights)), params)
