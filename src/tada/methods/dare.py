"""DARE (Yu et al. 2024): random drop + rescale, then linear or TIES; then back to rank r (SPEC §7).

Drops come from a ``torch.Generator`` seeded by (seed, module, side) — never the global RNG —
so a merge is reproducible and independent of module order.
"""
from __future__ import annotations

from dataclasses import dataclass

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..options import opt
from .base import ModuleInput, ModuleResult, register
from .dense import DenseParams, dense_dtype, dense_inputs, finish
from .sparsify import dare_drop, dare_drops, Drops, merge_entrywise, ties_merge, weighted_sum


@dataclass(frozen=True)
class DareParams(DenseParams):
    """rescale: ``density`` (× 1/density, the DARE paper and PEFT), ``l1`` (mergekit's rule) or ``none``."""

    rescale: str = opt("density", "How kept entries are rescaled.", flag="--dare-rescale",
                       choices=("density", "l1", "none"))


@dataclass(frozen=True)
class DareLinearParams(DareParams):
    weights: tuple[float, ...] = opt((0.5, 0.5))


def fused_drops(module: ModuleInput, params: DareParams) -> Drops | None:
    """DARE's keep masks for the fused chunk loop (the same draws as ``dropped``), or None where
    the drop cannot be fused (float64 work, the L1 rescale, density 1)."""
    if dense_dtype(module, params) != torch.float32 or params.rescale == "l1" or params.density >= 1.0:
        return None
    d_out, d_in = module.shape
    return dare_drops(d_out * d_in, params.density, [module.seed_for(params.seed, f"dare:{s}") for s in module.sides],
                      params.rescale == "density")


def dropped(module: ModuleInput, params: DareParams) -> list:
    return [dare_drop(d, params.density, module.seed_for(params.seed, f"dare:{s}"), params.rescale)
            for s, d in zip(module.sides, dense_inputs(module, params))]


@register("dare_linear", DareLinearParams, label="DARE-Lin", row=4, sweeps=("density", "seed"),
          reference="Yu et al. 2024 (DARE) drops + a weighted sum; PEFT dare_linear")
def dare_linear(module: ModuleInput, params: DareLinearParams) -> ModuleResult:
    """DARE drop/rescale of each ΔW, weighted sum, truncate to r."""
    drops = fused_drops(module, params)
    if drops is not None:  # fused: each chunk is dropped and summed while in cache (in place)
        deltas = dense_inputs(module, params)
        return finish(module, merge_entrywise(deltas, list(params.weights), "sum", drops=drops, out=deltas[0]), params)
    return finish(module, weighted_sum(dropped(module, params), list(params.weights)), params)


@register("dare_ties", DareParams, label="DARE-TIES", row=5, sweeps=("density", "seed"),
          reference="Yu et al. 2024 (DARE) drops + TIES merging; PEFT dare_ties, mergekit dare_ties")
def dare_ties(module: ModuleInput, params: DareParams) -> ModuleResult:
    """DARE drop/rescale, TIES sign election and disjoint mean, truncate to r."""
    drops = fused_drops(module, params)
    if drops is not None:  # fused: each chunk is dropped and merged while in cache (same draws as ``dropped``)
        deltas = dense_inputs(module, params)
        return finish(module, ties_merge(deltas, list(params.weights), drops, out=deltas[0]), params)
    return finish(module, ties_merge(dropped(module, params), list(params.weights)), params)
