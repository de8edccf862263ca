"""Naive dense float64 implementations written straight from SPEC §5–§7 (test oracles only).

Deliberately simple: dense ΔW, full SVDs, Python loops. Independent of tada's low-rank code.
"""
from __future__ import annotations

import hashlib
import math
import random

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
               fixed_alpha=None, layer_alpha=False, filter_side="both", keep_high_overlap=False,
               random_filter=None):
    """Eqs. 1–8 on dense matrices, per SPEC §5–6; ``delta`` a number (for ``auto``, compute it
    first with :func:`auto_delta_naive` over every module's overlaps).

    ``filter_side="task"``: only task components are filtered. ``keep_high_overlap``: keep exactly
    what full TaDA drops (overlap ≥ δ). ``random_filter``: ``(seed, module name)``: drop as many per
    side as full TaDA, at the indices ``random_keep`` draws (tada's documented per-(seed, module,
    side) ``random.Random``)."""
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
    if keep_high_overlap:
        keep_t = [o >= delta for o in ov_t]
        keep_d = [o >= delta for o in ov_d] if filter_side == "both" else keep_d
    if random_filter is not None:
        seed, name = random_filter
        keep_t = random_keep(len(ST), keep_t.count(False), seed, name, "task")
        keep_d = random_keep(len(SD), keep_d.count(False), seed, name, "domain")

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
    kept_t = [i for i, k in enumerate(keep_t) if k]
    kept_d = [j for j, k in enumerate(keep_d) if k]
    return truncate(merged, rank), {"s": s, "alpha": alpha, "kept_task": kept_t, "kept_domain": kept_d,
                                    "overlap_task": ov_t, "overlap_domain": ov_d}


def random_keep(k: int, n_drop: int, seed: int, name: str, side: str) -> list[bool]:
    """random_filter's draw: ``random.Random(f"{seed}:{name}:{side}").sample(range(k), n_drop)`` dropped."""
    drop = set(random.Random(f"{seed}:{name}:{side}").sample(range(k), n_drop))
    return [i not in drop for i in range(k)]


def seeded_generator(seed: int, name: str, purpose: str) -> torch.Generator:
    """The documented per-module seeding (ModuleInput.seed_for): sha256("seed:name:purpose"),
    first 8 bytes little-endian."""
    digest = hashlib.sha256(f"{seed}:{name}:{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def dare_drop(W: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """DARE on a float64 ΔW: keep an entry when its float64 uniform < density, rescale by 1/density."""
    keep = torch.rand(W.shape, generator=generator, dtype=torch.float64) < density
    return torch.where(keep, W, torch.zeros_like(W)) / density


def topk(W: torch.Tensor, density: float) -> torch.Tensor:
    flat = W.flatten()
    k = max(1, int(density * flat.numel()))
    idx = sorted(range(flat.numel()), key=lambda i: (-abs(float(flat[i])), i))[:k]
    out = torch.zeros_like(flat)
    out[idx] = flat[idx]
    return out.reshape(W.shape)


def ties_dense(WT, WD, density, weights):
    """TIES per SPEC §7 entry by entry: trim, sign of the weighted sum, disjoint weighted mean."""
    return ties_elect(topk(WT, density), topk(WD, density), weights)


def ties_elect(tt, td, weights):
    """TIES' sign election and disjoint weighted mean on two (already trimmed/dropped) deltas."""
    out = torch.zeros_like(tt)
    tf, df = tt.flatten().tolist(), td.flatten().tolist()
    for idx in range(tt.numel()):
        vals = [weights[0] * tf[idx], weights[1] * df[idx]]
        sign = 1.0 if sum(vals) >= 0 else -1.0
        num = sum(v for v in vals if v != 0 and math.copysign(1.0, v) == sign)
        den = sum(w for v, w in zip(vals, weights) if v != 0 and math.copysign(1.0, v) == sign)
        out.view(-1)[idx] = num / den if den != 0 else num
    return out


# ---- K domain adapters (SPEC §6b) ------------------------------------------------------------

def overlaps_dense_k(Ws: list[torch.Tensor], lam=0.5) -> list[list[float]]:
    """Eq. 5 over several adapters: every component's max overlap with any component of any
    *other* adapter, from full dense SVDs, one pair of components at a time."""
    comps = [svd_components(W) for W in Ws]
    out = []
    for a, (Ua, Sa, Va) in enumerate(comps):
        row = []
        for i in range(len(Sa)):
            row.append(max(lam * abs(float(Ua[:, i] @ Ub[:, j])) + (1 - lam) * abs(float(Va[:, i] @ Vb[:, j]))
                           for b, (Ub, Sb, Vb) in enumerate(comps) if b != a for j in range(len(Sb))))
        out.append(row)
    return out


def tada_dense_k(WT, WDs, hds, hg, *, tau, rank, beta=5.0, delta=0.10, lam=0.5, domain_combine="sum"):
    """K-domain TaDA on dense matrices, SPEC §6b read literally: per domain k, s_k and α_k from
    (T, D_k, P_dk, P_g) by Eqs. 1–3; every component filtered against every other adapter's (Eq. 5);
    a task component weighs the mean over k of its α_i^(k), domain k's component j weighs
    1 − α_j^(k) (divided by K with ``mean``); Eq. 7, then Eq. 8. Every delta non-zero."""
    K = len(WDs)
    UT, ST, VT = svd_components(WT)
    ov = overlaps_dense_k([WT, *WDs], lam)
    keep = [[o < delta for o in row] for row in ov]
    if not any(any(k) for k in keep):
        keep = [[True] * len(k) for k in keep]

    def n(W, h):
        return float((W @ h).norm())

    s_by, merged = [], torch.zeros_like(WT)
    task_weights = [0.0] * len(ST)
    for k, (WD, hd) in enumerate(zip(WDs, hds)):
        UD, SD, VD = svd_components(WD)

        def r_mod(h, WD=WD):
            return ratio(n(WD, h), max(n(WT, h), 1e-12 * float(ST[0]) * float(h.norm())))

        s_by.append(calibrated(r_mod(hd), r_mod(hg)))
        for i in range(len(ST)):
            def r_task(h, i=i, WD=WD):
                act = float(ST[i]) * abs(float(VT[:, i] @ h))
                return ratio(n(WD, h), max(act, 1e-12 * float(ST[i]) * float(h.norm())))
            task_weights[i] += sigmoid(beta * (tau - calibrated(r_task(hd), r_task(hg)))) / K
        for j in range(len(SD)):
            def r_dom(h, j=j, SD=SD, VD=VD):
                eps = 1e-12 * float(ST[0]) * float(h.norm())
                return ratio(float(SD[j]) * abs(float(VD[:, j] @ h)), max(n(WT, h), eps))
            w = 1 - sigmoid(beta * (tau - calibrated(r_dom(hd), r_dom(hg))))
            if keep[k + 1][j]:
                merged += (w / K if domain_combine == "mean" else w) * float(SD[j]) * torch.outer(UD[:, j], VD[:, j])
    for i in range(len(ST)):
        if keep[0][i]:
            merged += task_weights[i] * float(ST[i]) * torch.outer(UT[:, i], VT[:, i])
    kept = [[i for i, x in enumerate(k) if x] for k in keep]
    return truncate(merged, rank), {"s": s_by, "kept": kept, "overlaps": ov}
