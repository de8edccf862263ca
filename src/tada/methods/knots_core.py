"""Merging in a shared subspace of the adapters: KnOTS and Core Space (docs/methods.md).

Both methods work from the LoRA factors (ΔW_i = c_i B_i A_i, scaling folded into B) and never form
a dense d_out×d_in matrix: the shared bases come from QR factorizations of the stacked factors and
one small SVD; the merge rule runs on small matrices; the result is returned in the span of the
inputs with its natural rank (≤ Σ r_i, numerically zero components dropped) — neither paper
truncates to the adapters' rank (``--max-rank`` still caps it).

KnOTS (Stoica et al., ICLR 2025; code github.com/gstoica27/KnOTS, ``task_merger.SVDMerger`` and
``masking_ops``): [ΔW_1 … ΔW_n] = U Σ [V_1ᵀ … V_nᵀ]; the rule acts on the per-adapter Σ V_iᵀ
(k×d_in each, k ≤ Σ r_i, entry-wise); ΔW = U · merged.

Core Space (Panariello et al., NeurIPS 2025; code github.com/apanariello4/core-space-merging,
``task_merger.MatrixPerLayerMerger``): U_ref = left singular vectors of [B_1 … B_n], V_ref = right
singular vectors of [A_1; …; A_n]; cores M_i = U_refᵀ B_i A_i V_ref (≤ Σr × Σr); ΔW = U_ref ·
rule(M_1…M_n) · V_refᵀ.

The rules (:func:`subspace_rule`, one definition for both methods, one ``--rule`` option): ``ta``,
``ties``, ``dare_ties`` as the KnOTS authors' code computes them; ``tsv`` and ``iso_c`` as the
Core Space authors' ``get_tsv_delta_w`` and ``isotropize_matrix``. KnOTS with ``tsv``/``iso_c``
and Core Space with ``dare_ties`` are the same rule on the other method's matrices (tada's
combinations: oracle-tested, no authors' golden; docs/methods.md lists how the Core Space repo's
own variants differ).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..lowrank import ZERO_TOL, LowRank, polar, svd_in_bases, truncate
from ..options import opt
from .base import ModuleInput, ModuleResult, register

#: The merge rules of both methods (one ``--rule`` option, the same choices for both).
RULES = ("ta", "ties", "dare_ties", "tsv", "iso_c")


# --- shared pieces: the authors' TIES on small matrices ------------------------------------------

def authors_trim(x: torch.Tensor, density: float) -> torch.Tensor:
    """The authors' top-k trim of one adapter's matrix (KnOTS ``masking_ops.topk_values_mask``,
    Core Space ``merging_functions.topk_values_mask``): over all n entries, keep those with
    |x| ≥ the (n − int(n·density))-th smallest |x| — int(n·density)+1 entries when there are no
    ties (tada's ``magnitude_trim`` keeps int(n·density), mergekit's rule); density 1 keeps all."""
    if density >= 1.0:
        return x.clone()
    flat = x.reshape(-1)
    n = flat.numel()
    if n <= 1:
        return x.clone()
    import numpy as np  # where used (start-up): np.partition finds the same order statistic ~6x faster

    mag = flat.abs()
    k = n - int(n * density)
    kth = float(np.partition(mag.numpy(), k - 1)[k - 1])  # torch.kthvalue(mag, k), exactly
    return (flat * (mag >= kth)).reshape(x.shape)


def authors_ties(mats: list[torch.Tensor]) -> torch.Tensor:
    """Sign election and disjoint mean of already-trimmed matrices, as the authors' code does it
    (``resolve_sign`` with ``sum_of_values`` + ``disjoint_merge``/``chunked_disjoint_mean``
    ``mean``): sign = sign(Σ_i x_i) unweighted, a zero sign set to the majority sign
    sign(Σ_entries sign); an entry of adapter i is kept when it has the elected sign (x>0 where the
    sign is +, x<0 otherwise); result = Σ kept / max(#non-zero kept, 1)."""
    # numpy on views of the tensors: its comparisons and 0/1-mask products are several times
    # faster than torch's bool kernels here (docs/performance.md); the same values
    import numpy as np  # where used (start-up: `tada methods` loads this module)

    xs = [x.detach().contiguous().numpy() for x in mats]
    total = sum(xs[1:], xs[0])
    sign = np.sign(total)
    zero = sign == 0
    if zero.any():
        sign[zero] = np.sign(sign.sum())
    positive = sign > 0
    kept = [x * (((x > 0) & positive) | ((x < 0) & ~positive)) for x in xs]
    count = sum((k != 0).astype(total.dtype) for k in kept)
    return torch.from_numpy(sum(kept[1:], kept[0]) / np.maximum(count, 1))


def _stack_factors(module: ModuleInput) -> tuple[list[LowRank], list[int]]:
    parts = [module.lowrank(side) for side in module.sides]
    return parts, [p.P.shape[1] for p in parts]


def _result(U: torch.Tensor, M: torch.Tensor, V: torch.Tensor | None, info: dict) -> ModuleResult:
    """ΔW = U·M·Vᵀ (U, V orthonormal columns; V None: ΔW = U·M) returned with its natural rank (at
    least 1, zero-padded), balanced factors; only the small M is decomposed (:func:`svd_in_bases`)."""
    comps = svd_in_bases(U, M, V)
    tr = truncate(comps, max(comps.k, 1))
    return ModuleResult(tr.B, tr.A, {**info, "rank": comps.k})


# --- KnOTS ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KnotsParams:
    """rule: the merge applied to the Σ V_iᵀ blocks (:func:`subspace_rule`); density: ``ties``:
    fraction of each adapter's entries kept by the trim, ``dare_ties``: DARE keep probability;
    scale: λ on the merged result (the authors' ``scaling_coeffs``, one number for all adapters);
    seed: DARE's draws. Defaults: rule ``ties`` and density 0.2 (KnOTS-TIES, the authors'
    configs/vitB_r16_knots_ties.py and vitL_r16_knots_ties.py: ``topK: 20``); λ = 1 (tada's
    convention; the authors search λ on validation data: 0.5–0.7 in their configs)."""

    rule: str = opt("ties", "Merge rule in the subspace (knots, core_space).", choices=RULES)
    density: float = opt(0.2, "Fraction of each input's entries kept (ties) or DARE keep probability (dare_ties).",
                         gt=0, le=1, search=(0.1, 0.9))
    scale: float = opt(1.0, "Factor on the merged update.", search=(0.2, 2.0))
    seed: int = opt(0, "Seed of the DARE drops (rule dare_ties).")


def knots_components(module: ModuleInput) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """U (d_out×k) and the blocks Σ V_iᵀ (k×d_in each) of [ΔW_1 … ΔW_n] = U Σ [V_1ᵀ … V_nᵀ],
    from the factors: [c_1B_1 … c_nB_n] = Q_B R_B, A_iᵀ = Q_i R_i, so [ΔW_1 … ΔW_n] =
    Q_B [R_B,1 R_1ᵀ … R_B,n R_nᵀ] diag(Q_iᵀ); the small middle (≤ Σr × Σr) has the SVD U'ΣV'ᵀ,
    U = Q_B U', Σ V_iᵀ = Σ V'_iᵀ Q_iᵀ. Components with σ ≤ 1e-9·σ₁ are dropped (the authors drop
    σ ≤ 1e-5, absolute). Cost O((d_out + n·d_in)·(Σr)²)."""
    parts, ranks = _stack_factors(module)
    d_out, d_in = module.shape
    QB, RB = torch.linalg.qr(torch.cat([p.P for p in parts], dim=1))
    middles: list[torch.Tensor] = []
    bases: list[torch.Tensor | None] = []
    start = 0
    for p, r in zip(parts, ranks):
        if r == 0:
            bases.append(None)
        else:
            Qi, Ri = torch.linalg.qr(p.Q)
            middles.append(RB[:, start:start + r] @ Ri.T)
            bases.append(Qi)
        start += r
    Us, S, Vh = torch.linalg.svd(torch.cat(middles, dim=1), full_matrices=False)
    k = int((S > ZERO_TOL * S[0]).sum()) if S.numel() and S[0] > 0 else 0
    U, S, Vh = QB @ Us[:, :k], S[:k], Vh[:k]
    blocks, col = [], 0
    for Qi in bases:
        if Qi is None:
            blocks.append(torch.zeros(k, d_in, dtype=torch.float64))
            continue
        w = Qi.shape[1]
        blocks.append((S[:, None] * Vh[:, col:col + w]) @ Qi.T)
        col += w
    return U, blocks


def dare_masks(shape: tuple[int, int], n: int, density: float, generator: torch.Generator) -> list[torch.Tensor]:
    """The authors' DARE draws (``TaskMerger.randbin``), one k×d_in 0/1 mask per adapter in order:
    ``torch.randint(2, shape, dtype=float32).bernoulli(density)`` from one generator (the randint
    draw only advances the generator; it is kept so that a generator seeded like the authors'
    ``torch.manual_seed(dare_seed)`` gives their masks for one module)."""
    return [torch.randint(2, shape, dtype=torch.float32, generator=generator).bernoulli(density, generator=generator)
            .to(torch.float64) for _ in range(n)]


def subspace_rule(mats: list[torch.Tensor], rule: str, density: float, scale: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """λ·rule(X_1 … X_n) on small matrices (KnOTS: X_i = Σ V_iᵀ; Core Space: X_i = M_i):

    ``ta``: Σ_i X_i. ``ties``: the authors' trim of each X_i (:func:`authors_trim`), sign election
    and disjoint mean (:func:`authors_ties`). ``dare_ties``: DARE (the authors' draws,
    :func:`dare_masks`; keep with probability ``density``, × 1/density), then sign election and
    disjoint mean without a trim (the authors' KnOTS-DARE-TIES configs: ``topK: 100``). ``tsv``:
    :func:`tsv_core`. ``iso_c``: isotropize(Σ_i X_i) (:func:`isotropize`).
    """
    if rule == "ta":
        merged = sum(mats[1:], mats[0])
    elif rule == "ties":
        merged = authors_ties([authors_trim(x, density) for x in mats])
    elif rule == "dare_ties":
        if density < 1.0:
            if generator is None:
                raise ValueError("dare_ties needs a generator")
            shape = (int(mats[0].shape[0]), int(mats[0].shape[1]))
            masks = dare_masks(shape, len(mats), density, generator)
            mats = [x * m / density for x, m in zip(mats, masks)]
        merged = authors_ties(mats)
    elif rule == "tsv":
        merged = tsv_core(mats)
    elif rule == "iso_c":
        merged = isotropize(sum(mats[1:], mats[0]))
    else:
        raise ValueError(f"unknown subspace merge rule {rule!r}")
    return merged * scale


def _generator(module: ModuleInput, params) -> torch.Generator | None:
    return module.seed_for(params.seed, "subspace-dare") if params.rule == "dare_ties" else None


@register("knots", KnotsParams, row=9, label="KnOTS", exact=False,
          reference="Stoica et al. 2025 (KnOTS, ICLR); github.com/gstoica27/KnOTS task_merger.SVDMerger")
def knots(module: ModuleInput, params: KnotsParams) -> ModuleResult:
    """KnOTS: SVD of the adapters side by side, merge rule on the Σ·V blocks, ΔW = U·merged (rank ≤ Σr).

    The only dense step is the rule on the n blocks Σ V_iᵀ, each k×d_in with k ≤ Σ r_i. The result
    is not truncated to ``module.rank`` (the paper reconstructs U Σ V_mergedᵀ in full)."""
    U, blocks = knots_components(module)
    if U.shape[1] == 0:
        return _result(U, torch.zeros(0, module.shape[1], dtype=torch.float64), None, {"rule": params.rule, "k": 0})
    merged = subspace_rule(blocks, params.rule, params.density, params.scale, _generator(module, params))
    return _result(U, merged, None, {"rule": params.rule, "k": int(U.shape[1])})


# --- Core Space ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CoreSpaceParams(KnotsParams):
    """The parameters of :class:`KnotsParams`, on the cores. Default rule ``tsv`` (the authors'
    configs/vitB_r16_core_tsv.py and README usage: TSV in Core Space), density 0.3 for ``ties`` (the
    authors' eval_scripts/8vision_pertask_linearsearch.py ``default_params``: ``topK: 30``),
    λ = 1 (the authors search it; 0.2 in vitB_r16_core_tsv.py)."""

    rule: str = opt("tsv")
    density: float = opt(0.3)


def core_space(module: ModuleInput) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """U_ref (d_out×m), V_ref (d_in×m'), and the cores M_i = U_refᵀ c_iB_i A_i V_ref (m×m').

    [c_1B_1 … c_nB_n] = Q_B R_B, R_B = U_b Σ_b W_bᵀ: U_ref = Q_B U_b (left singular vectors);
    [A_1ᵀ … A_nᵀ] = Q_A R_A, R_A = U_a Σ_a W_aᵀ: V_ref = Q_A U_a (right singular vectors of the
    stacked A); M_i = U_bᵀ R_B,i R_A,iᵀ U_a (the column blocks of R_B and R_A of adapter i). No
    component is dropped (as the authors' ``get_core_matrices``): m = min(d_out, Σr),
    m' = min(d_in, Σr). Cost O((d_out + d_in)·(Σr)²)."""
    parts, ranks = _stack_factors(module)
    QB, RB = torch.linalg.qr(torch.cat([p.P for p in parts], dim=1))
    QA, RA = torch.linalg.qr(torch.cat([p.Q for p in parts], dim=1))
    Ub = torch.linalg.svd(RB, full_matrices=False)[0]
    Ua = torch.linalg.svd(RA, full_matrices=False)[0]
    cores, start = [], 0
    for r in ranks:
        cores.append((Ub.T @ RB[:, start:start + r]) @ (RA[:, start:start + r].T @ Ua))
        start += r
    return QB @ Ub, QA @ Ua, cores


def tsv_core(cores: list[torch.Tensor]) -> torch.Tensor:
    """TSV-Merge on the cores, as the authors' ``get_tsv_delta_w``: each core's top int(m/n)
    singular triplets (m = its number of singular values) side by side, the stacked U and Vᵀ
    replaced by their polar factors, result = polar(U_cat) diag(σ_cat) polar(V_catᵀ). A triplet
    with σ ≤ 1e-9·σ₁ of its core (an adapter of rank r_i < int(m/n)) is left as a zero column here;
    the authors' code places SVD-arbitrary null vectors there (same result whenever every
    r_i ≥ int(m/n), e.g. equal ranks)."""
    n = len(cores)
    svds = [torch.linalg.svd(c, full_matrices=False) for c in cores]
    m = svds[0][1].numel()
    red = int(m / n)
    sum_u = torch.zeros_like(svds[0][0])
    sum_s = torch.zeros_like(svds[0][1])
    sum_v = torch.zeros_like(svds[0][2])
    for i, (u, s, vh) in enumerate(svds):
        live = (s[:red] > ZERO_TOL * s[0]) if s.numel() and s[0] > 0 else torch.zeros(red, dtype=torch.bool)
        cols = slice(i * red, (i + 1) * red)
        sum_u[:, cols] = u[:, :red] * live
        sum_s[cols] = s[:red] * live
        sum_v[cols, :] = vh[:red, :] * live[:, None]
    return polar(sum_u) @ torch.diag(sum_s) @ polar(sum_v)


def isotropize(M: torch.Tensor) -> torch.Tensor:
    """Iso-C (the authors' ``isotropize_matrix``): U diag(mean σ) Vᵀ over all min(m, m') σ of M."""
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return (U * S.mean()) @ Vh


@register("core_space", CoreSpaceParams, row=10, label="Core Space", exact=False,
          reference="Panariello et al. 2025 (NeurIPS), arXiv 2509.17786; "
                    "github.com/apanariello4/core-space-merging task_merger.MatrixPerLayerMerger")
def core_space_merge(module: ModuleInput, params: CoreSpaceParams) -> ModuleResult:
    """Core Space: merge the Σr×Σr cores in the stacked factors' bases; ΔW = U_ref·M·V_refᵀ (rank ≤ Σr).

    Lossless: rule ``ta`` with scale 1 gives Σ ΔW_i exactly. Not truncated to ``module.rank`` (the
    paper reconstructs the full U_ref M V_refᵀ)."""
    U_ref, V_ref, cores = core_space(module)
    merged = subspace_rule(cores, params.rule, params.density, params.scale, _generator(module, params))
    return _result(U_ref, merged, V_ref, {"rule": params.rule, "core": list(merged.shape)})
