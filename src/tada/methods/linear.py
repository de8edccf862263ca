"""Exact weighted sums, written as rank r_T+r_D adapters: linear, task_arithmetic, cat (SPEC §7).

The result keeps every factor: B = [B_T, B_D] and A = [w_T c_T A_T; w_D c_D A_D] — the same
layout as PEFT's ``cat`` (weight and scaling folded into A), so ΔW = w_T ΔW^T + w_D ΔW^D exactly,
without PEFT's factor-wise ``linear``, which adds the cross terms B_T A_D (SPEC §7).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..options import opt
from .base import ModuleInput, ModuleResult, check_weights, register


@dataclass(frozen=True)
class WeightParams:
    weights: tuple[float, ...] = opt((0.5, 0.5), "One weight per input (task, then each domain adapter), e.g. 0.5,0.5.",
                                   search=(0.2, 0.8))  # tada tune: the task's weight, the domains share the rest

    def validate(self) -> None:
        check_weights(self.weights)


@dataclass(frozen=True)
class CatParams(WeightParams):
    weights: tuple[float, ...] = opt((1.0, 1.0))


@dataclass(frozen=True)
class TaskArithmeticParams:
    scale: float = opt(1.0, "Factor on the sum of the task vectors.", search=(0.2, 1.2))


def weighted_concat(module: ModuleInput, weights: tuple[float, ...]) -> ModuleResult:
    """B = [B_T, B_D, …], A = [w_T c_T A_T; w_D c_D A_D; …] (float64), one block per input. A
    missing side adds nothing."""
    Bs, As = [], []
    for m, w in zip(module.inputs, weights, strict=True):
        if m is not None:
            Bs.append(m.B.to(torch.float64))
            As.append(m.A.to(torch.float64) * (float(w) * m.scaling))
    return ModuleResult(torch.cat(Bs, dim=1), torch.cat(As, dim=0), {"rank": sum(a.shape[0] for a in As)})


@register("linear", WeightParams, exact=True, label="Linear", row=1,
          reference="weighted sum of the deltas; PEFT linear (exact, as cat)")
def linear(module: ModuleInput, params: WeightParams) -> ModuleResult:
    """w_T ΔW^T + Σ_k w_k ΔW^Dk, exact (rank r_T + Σ r_Dk)."""
    return weighted_concat(module, params.weights)


@register("task_arithmetic", TaskArithmeticParams, exact=True, label="Task Arith.", row=2,
          reference="Ilharco et al. 2023; mergekit task_arithmetic")
def task_arithmetic(module: ModuleInput, params: TaskArithmeticParams) -> ModuleResult:
    """scale·(ΔW^T + Σ_k ΔW^Dk), exact (rank r_T + Σ r_Dk); task vectors added in full by default."""
    return weighted_concat(module, (params.scale,) * len(module.inputs))


@register("cat", CatParams, exact=True, label="Concat (exact)", reference="PEFT add_weighted_adapter cat")
def cat(module: ModuleInput, params: CatParams) -> ModuleResult:
    """Concatenation: the exact weighted sum as a rank r_T+r_D adapter (PEFT's ``cat``)."""
    return weighted_concat(module, params.weights)
