"""SVD merge: the linear sum truncated to rank r by the low-rank route (SPEC §3, §7)."""
from __future__ import annotations

from .base import ModuleInput, ModuleResult, register
from .linear import WeightParams
from ..lowrank import concat, truncate_lowrank


@register("svd", WeightParams, label="SVD Merge", row=7, reference="PEFT add_weighted_adapter svd")
def svd(module: ModuleInput, params: WeightParams) -> ModuleResult:
    """w_T ΔW^T + w_D ΔW^D, truncated to rank r without forming ΔW (Eq. 8's split)."""
    w_t, w_d = params.weights
    t, d = module.lowrank("task"), module.lowrank("domain")
    summed = concat([t.scaled(w_t), d.scaled(w_d)])
    tr = truncate_lowrank(summed, module.rank)
    return ModuleResult(tr.B, tr.A, {"rel_error": tr.rel_error})
