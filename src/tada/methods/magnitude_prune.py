"""Magnitude pruning: trim each delta to its top-density magnitudes, then a weighted sum (SPEC §7)."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import opt
from .base import ModuleInput, ModuleResult, register
from .dense import DenseParams, dense_inputs, finish
from .sparsify import merge_entrywise, trim_rule


@dataclass(frozen=True)
class MagnitudePruneParams(DenseParams):
    weights: tuple[float, ...] = opt((0.5, 0.5))


@register("magnitude_prune", MagnitudePruneParams, label="Mag. Pruning", row=6,
          reference="PEFT magnitude_prune")
def magnitude_prune(module: ModuleInput, params: MagnitudePruneParams) -> ModuleResult:
    """Top-density trim of each ΔW, weighted sum (linear), truncate to r."""
    deltas = dense_inputs(module, params)
    trims = [trim_rule(d, params.density) for d in deltas]  # then trim and sum in one fused pass
    return finish(module, merge_entrywise(deltas, list(params.weights), "sum", trims=trims, out=deltas[0]), params)
