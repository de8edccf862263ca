"""Subspace merges in the factor span: TSV-M, Iso-C and Iso-CTS (docs/methods.md, "Subspace merges").

- ``tsv`` — Task Singular Vectors merge (Gargiulo et al., CVPR 2025): each adapter's top singular
  components, the concatenated singular vectors decorrelated by orthogonal Procrustes (the
  orthogonal polar factor), ΔW = α U⊥ Σ V⊥ᵀ.
- ``iso_c`` — Isotropic merging in the common subspace (Marczak et al., ICML 2025): the task
  arithmetic sum with its spectrum flattened to the mean singular value, times α.
- ``iso_cts`` — Iso-C's common subspace completed by each adapter's task-specific directions,
  orthogonalised, spectrum flattened, times α.

Everything is computed from the factors (d × Σr matrices and Σr × Σr SVDs); the dense
d_out×d_in ΔW is never formed. The authors run full SVDs of d×d matrices, where the zero singular
values of a sum of LoRAs count in the mean and arbitrary null-space directions enter the result;
here min(d_out, d_in) is replaced by the number of non-zero singular values (σ > 1e-9·σ₁), which
gives the authors' result exactly whenever that number is min(d_out, d_in) (Σr ≥ min(d_out, d_in)
and generic adapters), and keeps the result in the span of the inputs' factors otherwise
(pinned by tests/test_methods_tsv_iso.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..lowrank import Components, LowRank, concat, polar, thin_svd
from ..options import opt
from .base import ModuleInput, ModuleResult, check_weights, register

SCALE_HELP = ("α, the factor on the merged update (the authors pick it on validation data from "
              "0.1…3.0; 1.0 applies the merge unscaled).")


@dataclass(frozen=True)
class TsvParams:
    scale: float = opt(1.0, SCALE_HELP, search=(0.2, 2.0))
    keep: float | str = opt("auto", "Fraction of min(d_out, d_in) kept per adapter (the paper's sv_reduction): "
                                    "auto = 1/number of adapters (the paper's rule); never more than the "
                                    "adapter's non-zero components.", gt=0, le=1)


@dataclass(frozen=True)
class IsoCParams:
    scale: float = opt(1.0, SCALE_HELP, search=(0.2, 2.0))
    weights: tuple[float, ...] = opt((1.0, 1.0), "One weight per input (task, then each domain adapter) in "
                                                 "the sum whose spectrum is flattened; 1 each is the paper's sum.")

    def validate(self) -> None:
        check_weights(self.weights)


@dataclass(frozen=True)
class IsoCtsParams:
    scale: float = opt(1.0, SCALE_HELP, search=(0.2, 2.0))
    common_fraction: float = opt(0.8, "Fraction of the subspace given to the common directions (the top "
                                      "singular directions of the sum); the rest is split equally among the "
                                      "adapters' task-specific directions.", ge=0, le=1,
                                  search=(0.5, 1.0))


def _empty_result(module: ModuleInput, info: dict) -> ModuleResult:
    """A zero update as rank-1 zero factors (every input zero or missing)."""
    d_out, d_in = module.shape
    return ModuleResult(torch.zeros(d_out, 1, dtype=torch.float64), torch.zeros(1, d_in, dtype=torch.float64),
                        {**info, "rank": 0})


def _factors(U: torch.Tensor, s: torch.Tensor, V: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """B = sign(α)·U·√(|α|s), A = √(|α|s)·Vᵀ: the balanced split of α U diag(s) Vᵀ."""
    root = (s * abs(scale)).sqrt()
    sign = -1.0 if scale < 0 else 1.0
    return U * root * sign, (V * root).T.contiguous()


# ---- TSV-M ----------------------------------------------------------------------------------------

def tsv_kept(module: ModuleInput, params: TsvParams, comps: list[Components]) -> list[int]:
    """Components kept per input: ⌊keep·min(d_out, d_in)⌋ (keep = 1/T by default, T = number of
    inputs, as the authors' ``int(s.shape[0] * sv_reduction)``), at most the adapter's non-zero ones."""
    frac = 1.0 / len(module.inputs) if params.keep == "auto" else float(params.keep)
    per = int(min(module.shape) * frac)
    return [min(per, c.k) for c in comps]


@register("tsv", TsvParams, row=11, label="TSV-M",
          reference="Gargiulo et al. 2025 (CVPR), Task Singular Vectors; authors' TSVM_utils."
                    "compute_and_sum_svd_mem_reduction")
def tsv(module: ModuleInput, params: TsvParams) -> ModuleResult:
    """TSV-M: each adapter's top singular components, U and V decorrelated by Procrustes, α U⊥ΣV⊥ᵀ."""
    comps = module.components
    kept = tsv_kept(module, params, comps)
    if sum(kept) == 0:
        return _empty_result(module, {"kept": kept})
    U = torch.cat([c.U[:, :k] for c, k in zip(comps, kept)], dim=1)
    s = torch.cat([c.S[:k] for c, k in zip(comps, kept)])
    V = torch.cat([c.V[:, :k] for c, k in zip(comps, kept)], dim=1)
    B, A = _factors(polar(U), s, polar(V), params.scale)
    return ModuleResult(B, A, {"rank": int(s.numel()), "kept": kept})


# ---- Iso-C ----------------------------------------------------------------------------------------

@register("iso_c", IsoCParams, row=12, label="Iso-C",
          reference="Marczak et al. 2025 (ICML), No Task Left Behind; authors' iso.iso_c")
def iso_c(module: ModuleInput, params: IsoCParams) -> ModuleResult:
    """Iso-C: the sum's singular values all set to their mean (over the non-zero ones), times α."""
    summed = concat([module.lowrank(side).scaled(w) for side, w in zip(module.sides, params.weights, strict=True)])
    c = thin_svd(summed)
    if c.k == 0:
        return _empty_result(module, {})
    mean = float(c.S.mean())
    B, A = _factors(c.U, torch.full_like(c.S, mean), c.V, params.scale)
    return ModuleResult(B, A, {"rank": c.k, "sigma_mean": mean})


# ---- Iso-CTS --------------------------------------------------------------------------------------

def cts_split(k: int, n_tasks: int, fraction: float) -> tuple[int, int]:
    """(common directions, directions per task) of a subspace of ``k`` directions, the authors'
    rounding: common = ⌊k·f⌋, then the task-specific rest rounded to a multiple of the number of
    tasks, common taking what is left (never below 0: the authors' code would slice with a
    negative index there)."""
    common = int(k * fraction)
    specific_total = round((k - common) / n_tasks) * n_tasks
    if specific_total > k:  # rounded up past the subspace (fraction 0): one direction fewer per task
        specific_total -= n_tasks
    common = k - specific_total
    return common, int((k - common) / n_tasks)


@register("iso_cts", IsoCtsParams, row=13, label="Iso-CTS",
          reference="Marczak et al. 2025 (ICML), No Task Left Behind; authors' iso.iso_cts")
def iso_cts(module: ModuleInput, params: IsoCtsParams) -> ModuleResult:
    """Iso-CTS: the sum's top directions plus each adapter's task-specific ones, orthogonalised, flat spectrum, α."""
    parts = [module.lowrank(side) for side in module.sides]
    total = thin_svd(concat(parts))
    if total.k == 0:
        return _empty_result(module, {})
    n_common, per_task = cts_split(total.k, len(parts), params.common_fraction)
    Uc, Sc, Vc = total.U[:, :n_common], total.S[:n_common], total.V[:, :n_common]
    Us, Ss, Vs = [], [], []
    for part in parts:
        # (I − U_c U_cᵀ) ΔW_i as factors: project the left factor off the common directions
        residual = thin_svd(LowRank(part.P - Uc @ (Uc.T @ part.P), part.Q))
        n = min(per_task, residual.k)
        Us.append(residual.U[:, :n])
        Ss.append(residual.S[:n])
        Vs.append(residual.V[:, :n])
    U = torch.cat([*Us, Uc], dim=1)
    s = torch.cat([*Ss, Sc])
    V = torch.cat([*Vs, Vc], dim=1)
    mean = float(s.mean())
    B, A = _factors(polar(U), torch.full_like(s, mean), polar(V), params.scale)
    return ModuleResult(B, A, {"rank": int(s.numel()), "common": n_common,
                               "task_specific": [int(x.numel()) for x in Ss], "sigma_mean": mean})


__all__ = ["iso_c", "iso_cts", "tsv", "polar", "cts_split", "tsv_kept"]
