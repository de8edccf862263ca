"""Shared parameters and the last step of the entry-wise methods: truncate the dense result to r."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import ModuleInput, ModuleResult, check_weights
from .sparsify import check_density
from ..errors import TadaError
from ..lowrank import truncate_dense

SOLVERS = ("auto", "exact", "randomized")
#: ``svd_solver="auto"`` uses the exact SVD up to this many rows/columns, randomized above.
AUTO_EXACT_MAX_DIM = 2048


@dataclass(frozen=True)
class DenseParams:
    """density: fraction of entries kept; weights: (task, domain); svd_solver: how the dense
    result returns to rank r (``auto``: exact up to 2048×2048, randomized above); seed: for the
    randomized SVD (and DARE's drops)."""

    density: float = 0.5
    weights: tuple[float, float] = (1.0, 1.0)
    svd_solver: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        check_density(self.density)
        check_weights(self.weights)
        if self.svd_solver not in SOLVERS:
            raise TadaError(f"svd_solver must be one of {SOLVERS}, got {self.svd_solver!r}")


def finish(module: ModuleInput, merged: torch.Tensor, params: DenseParams) -> ModuleResult:
    """Truncate a dense merged ΔW to the module's rank; report the relative error."""
    solver = params.svd_solver
    if solver == "auto":
        solver = "exact" if max(merged.shape) <= AUTO_EXACT_MAX_DIM else "randomized"
    tr = truncate_dense(merged, module.rank, solver=solver,
                        generator=module.seed_for(params.seed, "svd"))
    return ModuleResult(tr.B, tr.A, {"rel_error": tr.rel_error, "svd_solver": solver})
