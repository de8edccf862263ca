"""TIES (Yadav et al. 2023): trim, elect sign, disjoint mean; then back to rank r (SPEC §7)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import ModuleInput, ModuleResult, register
from .dense import DenseParams, dense_inputs, finish
from .sparsify import magnitude_trim, ties_merge


@dataclass(frozen=True)
class TiesParams(DenseParams):
    pass


def ties_dense(module: ModuleInput, params: DenseParams):
    """The TIES-merged dense ΔW of one module, before truncation (equals mergekit's ``ties``)."""
    trimmed = [magnitude_trim(d, params.density) for d in dense_inputs(module, params)]
    return ties_merge(trimmed, list(params.weights))


@register("ties", TiesParams, label="TIES", row=3, sweeps=("density",),
          reference="Yadav et al. 2023; PEFT ties, mergekit ties")
def ties(module: ModuleInput, params: TiesParams) -> ModuleResult:
    """TIES: top-density trim per module, sign by weighted sum, disjoint mean, truncate to r."""
    return finish(module, ties_dense(module, params), params)
