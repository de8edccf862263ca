"""Shared parameters and the last step of the entry-wise methods: truncate the dense result to r."""
from __future__ import annotations

from dataclasses import dataclass

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..options import opt
from .base import ModuleInput, ModuleResult, check_weights
from ..lowrank import truncate_dense

SOLVERS = ("auto", "exact", "randomized")
#: ``svd_solver="auto"`` uses the exact SVD up to this many rows/columns, randomized above.
AUTO_EXACT_MAX_DIM = 2048
#: The randomized SVD of the merged ΔW starts from the inputs' row spaces (their A_iᵀ, where the
#: merged ΔW's dominant right singular vectors mostly lie) plus this many Gaussian columns, and
#: runs this many power iterations (docs/performance.md: the error against the exact truncation).
START_OVERSAMPLE = 8
START_POWER_ITERS = 2


@dataclass(frozen=True)
class DenseParams:
    """density: fraction of entries kept; weights: (task, domain); svd_solver: how the dense
    result returns to rank r (``auto``: exact up to 2048×2048, randomized above); seed: for the
    randomized SVD (and DARE's drops); precision: the dtype of the dense ΔW work (``auto``:
    float64 with the exact solver, float32 with the randomized one — its approximation error,
    ~1e-6 relative against the exact truncation, is far above float32 rounding)."""

    density: float = opt(0.5, "Fraction of each ΔW's entries kept.", gt=0, le=1, search=(0.1, 0.9))
    weights: tuple[float, ...] = opt((1.0, 1.0), "One weight per input (task, then each domain adapter), e.g. 0.5,0.5.",
                                   search=(0.2, 0.8))  # tada tune: the task's weight, the domains share the rest
    svd_solver: str = opt("auto", "How the dense result returns to rank r.", choices=SOLVERS)
    seed: int = opt(0, "Seed of DARE drops, TaDA's random filter and the randomized SVD.")
    precision: str = opt("auto", "dtype of the dense ΔW work.", choices=("auto", "float64", "float32"))

    def validate(self) -> None:
        check_weights(self.weights)


def solver_for(module: ModuleInput, params: DenseParams) -> str:
    if params.svd_solver != "auto":
        return params.svd_solver
    return "exact" if max(module.shape) <= AUTO_EXACT_MAX_DIM else "randomized"


def dense_dtype(module: ModuleInput, params: DenseParams) -> torch.dtype:
    """The dtype the method forms and edits this module's dense ΔW in."""
    if params.precision != "auto":
        return getattr(torch, params.precision)
    return torch.float32 if solver_for(module, params) == "randomized" else torch.float64


def dense_inputs(module: ModuleInput, params: DenseParams) -> list[torch.Tensor]:
    """[ΔW_task, ΔW_domain, ΔW_domain2…], d_out×d_in each, in ``dense_dtype``."""
    dtype = dense_dtype(module, params)
    return [module.dense(side, dtype) for side in module.sides]


def finish(module: ModuleInput, merged: torch.Tensor, params: DenseParams) -> ModuleResult:
    """Truncate a dense merged ΔW to the module's rank; report the relative error."""
    solver = solver_for(module, params)
    start = torch.cat([m.A.T for m in module.inputs if m is not None], dim=1)
    tr = truncate_dense(merged, module.rank, solver=solver, generator=module.seed_for(params.seed, "svd"),
                        start=start, oversample=START_OVERSAMPLE, power_iters=START_POWER_ITERS)
    return ModuleResult(tr.B, tr.A, {"rel_error": tr.rel_error, "svd_solver": solver,
                                      "precision": str(merged.dtype).replace("torch.", "")})
