"""Naive dense float64 implementations written straight from SPEC §5–§7 (test oracles only).

Deliberately simple: dense ΔW, full SVDs, Python loops. Independent of tada's low-rank code.
"""
from __future__ import annotations

import math

import torch

ZERO = 1e-9


def svd_components(W: torch.Tensor):
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    keep = S > ZERO * S[0] if S.numel() and S[0] > 0 else torch.zeros_like(S, dtype=torch.bool)
    return U[:, keep], S[keep], Vh[keep].T


def truncate(W: torch.Tensor, rank: int) -> torch.Tensor:
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    return U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]


def ratio(num: float, den: float) -> float:
    if num == 0:
        return 0.0
    return num / den if den > 0 else math.inf


def calibrated(rd: float, rg: float) -> float:
    if rg == 0:
        return math.inf if rd > 0 else 1.0
    return rd / rg


def sigmoid(x: float) -> float:
    if x == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def overlaps_dense(WT, WD, lam=0.5):
    """Eq. 5 for every task component (max over domain ones) and every domain component (max over
    task ones), from full dense SVDs, one pair at a time."""
    UT, ST, VT = svd_components(WT)
    UD, SD, VD = svd_components(WD)

    def o(i, j):
        return lam * abs(float(UT[:, i] @ UD[:, j])) + (1 - lam) * abs(float(VT[:, i] @ VD[:, j]))

    return ([max(o(i, j) for j in range(len(SD))) for i in range(len(ST))],
            [max(o(i, j) for i in range(len(ST))) for j in range(len(SD))])


def auto_delta_naive(pooled: list[float], q: float) -> float:
    """SPEC §6 read literally: the smallest candidate δ (a pooled value, or just above the largest)
    under which ``overlap < δ`` drops at most ⌊q·n⌋ components."""
    k = math.floor(q * len(pooled))
    candidates = sorted(set(pooled)) + [math.nextafter(max(pooled), math.inf)]
    return next(v for v in candidates if sum(o >= v for o in pooled) <= k)


def tada_dense(WT, WD, hd, hg, *, tau, rank, beta=5.0, delta=0.10, lam=0.5, no_filter=False,
               fixed_alpha=None, layer_alpha=False, filter_side="both"):
    """Eqs. 1–8 on dense matrices, per SPEC §5–6 (no random/keep-high ablations); ``delta`` a number
    (for ``auto``, compute it first with :func:`auto_delta_naive` over every module's overlaps)."""
    UT, ST, VT = svd_components(WT)
    UD, SD, VD = svd_components(WD)

    def r_mod(h):
        eps = 1e-12 * float(ST[0]) * float(h.norm())
        return ratio(float((WD @ h).norm()), max(float((WT @ h).norm()), eps))

    s = calibrated(r_mod(hd), r_mod(hg))
    alpha = sigmoid(beta * (tau - s))
    ov_t, ov_d = overlaps_dense(WT, WD, lam)
    keep_t = [no_filter or o < delta for o in ov_t]
    keep_d = [no_filter or filter_side == "task" or o < delta for o in ov_d]
    if not any(keep_t) and not any(keep_d):
        keep_t, keep_d = [True] * len(ST), [True] * len(SD)

    def r_task(i, h):
        act = float(ST[i]) * abs(float(VT[:, i] @ h))
        return ratio(float((WD @ h).norm()), max(act, 1e-12 * float(ST[i]) * float(h.norm())))

    def r_dom(j, h):
        eps = 1e-12 * float(ST[0]) * float(h.norm())
        return ratio(float(SD[j]) * abs(float(VD[:, j] @ h)), max(float((WT @ h).norm()), eps))

    merged = torch.zeros_like(WT)
    for i in range(len(ST)):
        a = sigmoid(beta * (tau - calibrated(r_task(i, hd), r_task(i, hg))))
        a = fixed_alpha if fixed_alpha is not None else (alpha if layer_alpha else a)
        if keep_t[i]:
            merged += a * float(ST[i]) * torch.outer(UT[:, i], VT[:, i])
    for j in range(len(SD)):
        a = sigmoid(beta * (tau - calibrated(r_dom(j, hd), r_dom(j, hg))))
        a = fixed_alpha if fixed_alpha is not None else (alpha if layer_alpha else a)
        if keep_d[j]:
            merged += (1 - a) * float(SD[j]) * torch.outer(UD[:, j], VD[:, j])
    return truncate(merged, rank), {"s": s, "alpha": alpha, "kept_task": keep_t, "kept_domain": keep_d}


def topk(W: torch.Tensor, density: float) -> torch.Tensor:
    flat = W.flatten()
    k = max(1, int(density * flat.numel()))
    idx = sorted(range(flat.numel()), key=lambda i: (-abs(float(flat[i])), i))[:k]
    out = torch.zeros_like(flat)
    out[idx] = flat[idx]
    return out.reshape(W.shape)


def ties_dense(WT, WD, density, weights):
    """TIES per SPEC §7 entry by entry: trim, sign of the weighted sum, disjoint weighted mean."""
    tt, td = topk(WT, density), topk(WD, density)
    out = torch.zeros_like(WT)
    for idx in range(WT.numel()):
        vals = [weights[0] * float(tt.flatten()[idx]), weights[1] * float(td.flatten()[idx])]
        sign = 1.0 if sum(vals) >= 0 else -1.0
        num = sum(v for v in vals if v != 0 and math.copysign(1.0, v) == sign)
        den = sum(w for v, w in zip(vals, weights) if v != 0 and math.copysign(1.0, v) == sign)
        out.view(-1)[idx] = num / den if den != 0 else num
    return out
