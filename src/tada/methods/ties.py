"""TIES (Yadav et al. 2023): trim, elect sign, disjoint mean; then back to rank r (SPEC §7)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import ModuleInput, ModuleResult, register
from .dense import DenseParams, dense_inputs, finish
from .sparsify import merge_entrywise, trim_rule


@dataclass(frozen=True)
class TiesParams(DenseParams):
    pass


def ties_dense(module: ModuleInput, params: DenseParams):
    """The TIES-merged dense ΔW of one module, before truncation (equals mergekit's ``ties``): each
    ΔW's exact top-k threshold first, then trim, sign election and disjoint mean in one fused pass."""
    deltas = dense_inputs(module, params)
    trims = [trim_rule(d, params.density) for d in deltas]
    return merge_entrywise(deltas, list(params.weights), "ties", trims=trims, out=deltas[0])


@register("ties", TiesParams, label="TIES", row=3, sweeps=("density",),
          reference="Yadav et al. 2023; PEFT ties, mergekit ties")
def ties(module: ModuleInput, params: TiesParams) -> ModuleResult:
    """TIES: top-density trim per module, sign by weighted sum, disjoint mean, truncate to r."""
    return finish(module, ties_dense(module, params), params)
