"""Magnitude pruning: trim each delta to its top-density magnitudes, then a weighted sum (SPEC §7)."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import opt
from .base import ModuleInput, ModuleResult, register
from .dense import DenseParams, dense_inputs, finish
from .sparsify import magnitude_trim, weighted_sum


@dataclass(frozen=True)
class MagnitudePruneParams(DenseParams):
    weights: tuple[float, ...] = opt((0.5, 0.5))


@register("magnitude_prune", MagnitudePruneParams, label="Mag. Pruning", row=6,
          reference="PEFT magnitude_prune")
def magnitude_prune(module: ModuleInput, params: MagnitudePruneParams) -> ModuleResult:
    """Top-density trim of each ΔW, weighted sum (linear), truncate to r."""
    trimmed = [magnitude_trim(d, params.density) for d in dense_inputs(module, params)]
    return finish(module, weighted_sum(trimmed, list(params.weights)), params)
