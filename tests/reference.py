"""Naive dense float64 implementations written straight from SPEC §5–§7 (test oracles only).

Deliberately simple: dense ΔW, full SVDs, Python loops. Independent of tada's low-rank code.
"""
from __future__ import annotations

import hashlib
import math
import random

import numpy as np
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
               random_filter=None, energy_control=None):
    """Eqs. 1–8 on dense matrices, per SPEC §5–6; ``delta`` a number (for ``auto``, compute it
    first with :func:`auto_delta_naive` over every module's overlaps).

    ``filter_side="task"``: only task components are filtered. ``keep_high_overlap``: keep exactly
    what full TaDA drops (overlap ≥ δ). ``random_filter``: ``(seed, module name)``: drop as many per
    side as full TaDA, at the indices ``random_keep`` draws (tada's documented per-(seed, module,
    side) ``random.Random``). ``energy_control``: ``(kind, seed, module name)``: every component
    kept, each adapter's σ_i multiplied by :func:`energy_factors` of full TaDA's mask."""
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
    f_t, f_d = [1.0] * len(ST), [1.0] * len(SD)
    if energy_control is not None:
        kind, seed, name = energy_control
        f_t = energy_factors([float(x) for x in ST], keep_t, kind, seed, name, "task")
        f_d = energy_factors([float(x) for x in SD], keep_d, kind, seed, name, "domain")
        keep_t, keep_d = [f > 0 for f in f_t], [f > 0 for f in f_d]

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
            merged += a * f_t[i] * float(ST[i]) * torch.outer(UT[:, i], VT[:, i])
    for j in range(len(SD)):
        a = sigmoid(beta * (tau - calibrated(r_dom(j, hd), r_dom(j, hg))))
        a = fixed_alpha if fixed_alpha is not None else (alpha if layer_alpha else a)
        if keep_d[j]:
            merged += (1 - a) * f_d[j] * float(SD[j]) * torch.outer(UD[:, j], VD[:, j])
    kept_t = [i for i, k in enumerate(keep_t) if k]
    kept_d = [j for j, k in enumerate(keep_d) if k]
    return truncate(merged, rank), {"s": s, "alpha": alpha, "kept_task": kept_t, "kept_domain": kept_d,
                                    "overlap_task": ov_t, "overlap_domain": ov_d}


def energy_factors(S: list[float], keep: list[bool], kind: str, seed: int, name: str, side: str) -> list[float]:
    """The energy-matched controls as issue #25 states them: E = Σ σ_i² over the components the
    filter drops; ``scale``: every σ_i times √(1 − E/Σσ²); ``random``: in the order
    ``random.Random(f"{seed}:{name}:{side}:energy").shuffle`` gives, drop whole components while
    the removed energy stays ≤ E, then shrink the next so that exactly E is removed."""
    E = sum(x * x for x, k in zip(S, keep) if not k)
    total = sum(x * x for x in S)
    if E <= 0:
        return [1.0] * len(S)
    if kind == "scale":
        return [math.sqrt(1 - E / total)] * len(S)
    order = list(range(len(S)))
    random.Random(f"{seed}:{name}:{side}:energy").shuffle(order)
    out, left = [1.0] * len(S), E
    for i in order:
        if S[i] ** 2 <= left:
            out[i], left = 0.0, left - S[i] ** 2
        else:
            out[i] = math.sqrt(1 - left / S[i] ** 2)
            break
    return out


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


# ---- subspace methods (issue #27): KnOTS, Core Space, TSV-M, Iso-C, Iso-CTS ---------------------

def authors_trim_dense(x: torch.Tensor, density: float) -> torch.Tensor:
    """Keep |x| ≥ the (n − int(n·density))-th smallest magnitude (the authors' TIES trim)."""
    if density >= 1:
        return x
    mags = x.abs().flatten().sort().values
    return x * (x.abs() >= mags[x.numel() - int(x.numel() * density) - 1])


def authors_ties_dense(xs: list[torch.Tensor]) -> torch.Tensor:
    """TIES steps 2–3 entry by entry: elected sign of Σx (0 → majority sign), disjoint mean."""
    total = sum(xs)
    sign = torch.sign(total)
    sign[sign == 0] = torch.sign(sign.sum())
    out = torch.zeros_like(total)
    for idx in np.ndindex(*total.shape):
        agree = [float(x[idx]) for x in xs if (x[idx] > 0 if sign[idx] > 0 else x[idx] < 0)]
        out[idx] = sum(agree) / max(len(agree), 1)
    return out


def subspace_rule_dense(xs: list[torch.Tensor], rule: str, density: float, scale: float,
                        generator: torch.Generator | None = None):
    """λ·rule(X_1 … X_n), each rule from its paper (TIES/DARE/TSV/Iso-C), written out densely."""
    n = len(xs)
    if rule == "ta":
        merged = sum(xs)
    elif rule == "ties":
        merged = authors_ties_dense([authors_trim_dense(x, density) for x in xs])
    elif rule == "dare_ties":  # the authors' draws (randint, then bernoulli) from the given generator
        g = generator
        dropped = []
        for x in xs:
            # TaskMerger.randbin, literally: Bernoulli(density) on a randint tensor (scalar p)
            keep_mask = torch.randint(2, tuple(x.shape), dtype=torch.float32, generator=g).bernoulli(density, generator=g)
            dropped.append(x * keep_mask.double() / density)
        merged = authors_ties_dense(dropped)
    elif rule == "iso_c":
        u, s, vh = torch.linalg.svd(sum(xs), full_matrices=False)
        merged = u @ torch.diag(torch.full_like(s, float(s.mean()))) @ vh
    else:  # tsv: top int(m/n) triplets of each X_i (zero where X_i has no such component)
        m = min(xs[0].shape)
        red = m // n
        Us, Ss, Vs = [], [], []
        for x in xs:
            u, s, vh = torch.linalg.svd(x, full_matrices=False)
            live = (s[:red] > ZERO * s[0]).double()
            Us.append(u[:, :red] * live)
            Ss.append(s[:red] * live)
            Vs.append(vh[:red].T * live)
        pad = m - red * n
        Ucat = torch.cat([*Us, torch.zeros(xs[0].shape[0], pad, dtype=torch.float64)], dim=1)
        Vcat = torch.cat([*Vs, torch.zeros(xs[0].shape[1], pad, dtype=torch.float64)], dim=1)
        Scat = torch.cat([*Ss, torch.zeros(pad, dtype=torch.float64)])
        pu = torch.linalg.svd(Ucat, full_matrices=False)
        pv = torch.linalg.svd(Vcat, full_matrices=False)
        merged = (pu[0] @ pu[2]) @ torch.diag(Scat) @ (pv[0] @ pv[2]).T
    return scale * merged


def knots_dense(ds: list[torch.Tensor], rule: str, density: float = 0.2, scale: float = 1.0,
                generator: torch.Generator | None = None):
    """KnOTS: [ΔW_1 … ΔW_n] = U Σ [V_1ᵀ … V_nᵀ] by a dense SVD; rule on Σ V_iᵀ; ΔW = U · merged."""
    d_in = ds[0].shape[1]
    U, S, Vh = torch.linalg.svd(torch.cat(ds, dim=1), full_matrices=False)
    keep = S > ZERO * S[0]
    U, S, Vh = U[:, keep], S[keep], Vh[keep]
    sv = [S[:, None] * Vh[:, i * d_in:(i + 1) * d_in] for i in range(len(ds))]
    return U @ subspace_rule_dense(sv, rule, density, scale, generator)


def core_space_dense(Bs: list[torch.Tensor], As: list[torch.Tensor], rule: str, density: float = 0.3,
                     scale: float = 1.0, generator: torch.Generator | None = None):
    """Core Space: U_ref, V_ref from dense SVDs of [c_1B_1 … c_nB_n] (Bs, scaling folded in) and
    [A_1; …; A_n]; M_i = U_refᵀ ΔW_i V_ref; ΔW = U_ref · rule(M) · V_refᵀ."""
    U_ref = torch.linalg.svd(torch.cat(Bs, dim=1), full_matrices=False)[0]
    V_ref = torch.linalg.svd(torch.cat(As, dim=0), full_matrices=False)[2].T
    cores = [U_ref.T @ B @ A @ V_ref for A, B in zip(As, Bs)]
    return U_ref @ subspace_rule_dense(cores, rule, density, scale, generator) @ V_ref.T


def svd_nz(W: torch.Tensor):
    """Full dense SVD, components with σ > 1e-9·σ₁ only."""
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    n = int((S > ZERO * S[0]).sum()) if S.numel() and S[0] > 0 else 0
    return U[:, :n], S[:n], Vh[:n].T


def polar_eig(M: torch.Tensor) -> torch.Tensor:
    """Orthogonal polar factor M (MᵀM)^(-1/2) (M of full column rank)."""
    lam, Q = torch.linalg.eigh(M.T @ M)
    return M @ (Q @ torch.diag(lam.rsqrt()) @ Q.T)


def tsv_dense(Ws, scale=1.0, keep=None):
    """TSV-M (paper §5, Eq. for TSV-M): per task the top ⌊keep·min(d)⌋ singular triplets
    (keep = 1/T), U = [U_1 … U_T], Σ = blockdiag, V = [V_1 … V_T]; U⊥, V⊥ by Procrustes; α U⊥ΣV⊥ᵀ."""
    per = int(min(Ws[0].shape) * (keep if keep is not None else 1 / len(Ws)))
    Us, Ss, Vs = [], [], []
    for W in Ws:
        U, S, V = svd_nz(W)
        Us.append(U[:, :per])
        Ss.append(S[:per])
        Vs.append(V[:, :per])
    U, S, V = torch.cat(Us, 1), torch.cat(Ss), torch.cat(Vs, 1)
    return scale * polar_eig(U) @ torch.diag(S) @ polar_eig(V).T


def iso_c_dense(Ws, scale=1.0, weights=None):
    """Iso-C (paper Eq. 7–8): Σ_i w_i ΔW_i = UΣVᵀ, every non-zero σ replaced by their mean."""
    weights = weights or [1.0] * len(Ws)
    U, S, V = svd_nz(sum(w * W for w, W in zip(weights, Ws)))
    return scale * float(S.mean()) * U @ V.T


def iso_cts_dense(Ws, scale=1.0, fraction=0.8):
    """Iso-CTS (paper §4.2, Algorithm 1): k = rank of the sum; common = top ⌊k·f⌋ (rounded so the
    rest splits equally); each task: (I − U_c U_cᵀ)ΔW_i, its top k_ts/T triplets; concatenate,
    orthogonalise U and V (polar), σ := mean, times α."""
    T = len(Ws)
    U, S, V = svd_nz(sum(Ws))
    k = S.numel()
    c = int(k * fraction)
    c = k - round((k - c) / T) * T
    per = (k - c) // T
    Uc, Sc, Vc = U[:, :c], S[:c], V[:, :c]
    Us, Ss, Vs = [], [], []
    for W in Ws:
        Ut, St, Vt = svd_nz(W - Uc @ Uc.T @ W)
        Us.append(Ut[:, :per])
        Ss.append(St[:per])
        Vs.append(Vt[:, :per])
    Uall, Sall, Vall = torch.cat([*Us, Uc], 1), torch.cat([*Ss, Sc]), torch.cat([*Vs, Vc], 1)
    return scale * float(Sall.mean()) * polar_eig(Uall) @ polar_eig(Vall).T


SUBSPACE = ("knots", "core_space", "tsv", "iso_c", "iso_cts")


def subspace_answer(method: str, task, domain, name: str, WT: torch.Tensor, WD: torch.Tensor):
    """The dense float64 oracles above with each method's defaults (KnOTS: TIES at
    density 0.2; Core Space: TSV; TSV-M keep 1/T; Iso-C weights 1, 1; Iso-CTS common fraction 0.8)."""
    from conftest import scaled_factors

    if method == "knots":
        return knots_dense([WT, WD], "ties", 0.2)
    if method == "core_space":
        (BT, AT), (BD, AD) = scaled_factors(task, name), scaled_factors(domain, name)
        return core_space_dense([BT, BD], [AT, AD], "tsv", 0.3)
    if method == "tsv":
        return tsv_dense([WT, WD])
    if method == "iso_c":
        return iso_c_dense([WT, WD])
    return iso_cts_dense([WT, WD])
