"""Entry-wise operations on dense deltas (TIES, DARE, magnitude pruning): small pure functions.

Each acts on one module's d_out×d_in ΔW at a time (never all modules at once). Conventions
(SPEC §7): top-k keeps k = max(1, int(density·numel)) entries, ties broken by index (stable
sort), as mergekit does; DARE drops with an explicit ``torch.Generator`` and rescales by
1/density (the DARE paper, PEFT) or to the original L1 norm (``rescale="l1"``, mergekit's rule);
TIES elects the sign per entry by the sum of the *weighted* trimmed deltas and takes the
disjoint mean weighted by the agreeing entries' weights (mergekit's ``normalize=True``).
"""
from __future__ import annotations

import torch

from ..errors import TadaError


def check_density(density: float) -> None:
    if not 0.0 < density <= 1.0:
        raise TadaError(f"density must be in (0, 1], got {density}")


def magnitude_trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the top-k entries by magnitude, k = max(1, int(density·numel)); zero the rest."""
    if density >= 1.0:
        return delta.clone()
    flat = delta.reshape(-1)
    k = max(1, int(density * flat.numel()))
    mag = flat.abs()
    # the k-th largest magnitude in O(n) (no full sort); entries equal to it are taken by index
    threshold = torch.kthvalue(mag, flat.numel() - k + 1).values
    keep = mag > threshold
    ties_needed = k - int(keep.sum())
    if ties_needed > 0:
        tied = (mag == threshold).nonzero().flatten()[:ties_needed]
        keep[tied] = True
    return torch.where(keep, flat, torch.zeros_like(flat)).reshape(delta.shape)


def dare_drop(delta: torch.Tensor, density: float, generator: torch.Generator,
              rescale: str = "density") -> torch.Tensor:
    """Keep each entry with probability ``density`` and rescale the survivors.

    ``rescale="density"``: × 1/density (DARE paper, PEFT). ``"l1"``: to the original L1 norm
    (mergekit). ``"none"``: no rescaling.
    """
    if density >= 1.0:
        return delta.clone()
    keep = torch.rand(delta.shape, generator=generator, dtype=torch.float64) < density
    out = delta * keep
    if rescale == "density":
        return out / density
    if rescale == "l1":
        kept = out.abs().sum()
        return out * (delta.abs().sum() / kept) if kept > 0 else out
    if rescale == "none":
        return out
    raise TadaError(f"unknown DARE rescale {rescale!r}; choose density, l1 or none")


def ties_merge(deltas: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Sign election + disjoint mean (TIES steps 2–3).

    sign = sign(Σ_i w_i δ_i) (0 counts as +); an entry of adapter i takes part when
    sign(w_i δ_i) equals it; result = Σ w_i δ_i [agree] / Σ w_i [agree] (divisor 0 → 1).
    """
    stacked = torch.stack(deltas)
    w = torch.tensor(weights, dtype=stacked.dtype).view(-1, *([1] * (stacked.ndim - 1)))
    weighted = stacked * w
    majority = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0).to(stacked.dtype)
    agree = (weighted.sign() == majority).to(stacked.dtype)
    divisor = (w * agree).sum(dim=0)
    divisor[divisor == 0] = 1.0
    return (weighted * agree).sum(dim=0) / divisor


def weighted_sum(deltas: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    return sum(float(w) * d for d, w in zip(deltas, weights))
