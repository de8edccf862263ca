"""SVD merge: the linear sum truncated to rank r by the low-rank route (SPEC §3, §7)."""
from __future__ import annotations

from .base import ModuleInput, ModuleResult, register
from .linear import WeightParams
from ..lowrank import concat, truncate_lowrank


@register("svd", WeightParams, label="SVD Merge", row=7, reference="PEFT add_weighted_adapter svd")
def svd(module: ModuleInput, params: WeightParams) -> ModuleResult:
    """w_T ΔW^T + Σ_k w_k ΔW^Dk, truncated to rank r without forming ΔW (Eq. 8's split)."""
    summed = concat([module.lowrank(side).scaled(w) for side, w in zip(module.sides, params.weights, strict=True)])
    tr = truncate_lowrank(summed, module.rank)
    return ModuleResult(tr.B, tr.A, {"rel_error": tr.rel_error})
