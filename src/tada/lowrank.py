"""Low-rank linear algebra for deltas ΔW = P·Qᵀ that never forms the dense d_out×d_in matrix.

SPEC §3: a thin SVD of P·Qᵀ (P: d_out×k, Q: d_in×k) comes from two QR factorizations and one
k×k SVD: P = Q_P R_P, Q = Q_Q R_Q, R_P R_Qᵀ = U' Σ V'ᵀ, so U = Q_P U', V = Q_Q V'. Cost
O((d_in+d_out)·k²). Everything here runs in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._lazy import torch  # imported on first use (start-up: `tada methods`)

#: Components with σ ≤ ZERO_TOL·σ₁ are numerically zero (SPEC §6).
ZERO_TOL = 1e-9


@dataclass(frozen=True)
class LowRank:
    """ΔW = P @ Q.T with P: d_out×k, Q: d_in×k (float64)."""

    P: torch.Tensor
    Q: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.P.shape[0]), int(self.Q.shape[0])

    def dense(self) -> torch.Tensor:
        """The d_out×d_in matrix. For tests and the entry-wise methods only."""
        return self.P @ self.Q.T

    def scaled(self, w: float) -> LowRank:
        """w·ΔW."""
        return LowRank(self.P * float(w), self.Q)

    def apply(self, h: torch.Tensor) -> torch.Tensor:
        """ΔW·h for h: d_in (or d_in×n), without forming ΔW."""
        return self.P @ (self.Q.T @ h)


@dataclass(frozen=True)
class LoraModule:
    """One adapted module: raw factors and the scaling c that multiplies B·A.

    A: r×d_in, B: d_out×r (as stored). ``delta`` = c·B·A is never formed here.
    """

    name: str
    A: torch.Tensor
    B: torch.Tensor
    scaling: float

    @property
    def rank(self) -> int:
        return int(self.A.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(d_out, d_in) of ΔW."""
        return int(self.B.shape[0]), int(self.A.shape[1])


def from_lora(A: torch.Tensor, B: torch.Tensor, scaling: float) -> LowRank:
    """ΔW = c·B·A as factors: P = c·B (d_out×r), Q = Aᵀ (d_in×r) (SPEC §2: fold c in first)."""
    return LowRank(B.to(torch.float64) * float(scaling), A.to(torch.float64).T)


@dataclass(frozen=True)
class Components:
    """Thin SVD ΔW = U diag(S) Vᵀ with only the numerically non-zero components kept.

    U: d_out×k, S: k (descending), V: d_in×k. Sign convention (determinism, SPEC §6): the entry
    of largest magnitude of each column of U is positive; V's column is flipped with it.
    """

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor

    @property
    def k(self) -> int:
        return int(self.S.numel())

    def lowrank(self, weights: torch.Tensor | None = None) -> LowRank:
        """Σ_i w_i σ_i u_i v_iᵀ as factors (w = 1 when ``weights`` is None)."""
        s = self.S if weights is None else self.S * weights
        return LowRank(self.U * s, self.V)

    def select(self, keep: torch.Tensor) -> Components:
        if bool(keep.all()):
            return self
        return Components(self.U[:, keep], self.S[keep], self.V[:, keep])


def thin_svd(lr: LowRank) -> Components:
    """Eq. 4 for a low-rank delta: QR–QR–small SVD, then drop σ ≤ 1e-9·σ₁ and fix signs.

    Shapes: U d_out×k, S k, V d_in×k with k ≤ rank(P Qᵀ).
    """
    P, Q = lr.P.to(torch.float64), lr.Q.to(torch.float64)
    d_out, d_in = lr.shape
    if P.shape[1] == 0:
        return _empty(d_out, d_in)
    Qp, Rp = torch.linalg.qr(P)
    Qq, Rq = torch.linalg.qr(Q)
    Us, S, Vhs = torch.linalg.svd(Rp @ Rq.T, full_matrices=False)
    return _signed(Qp @ Us, S, Qq @ Vhs.T)


def svd_in_bases(U: torch.Tensor, M: torch.Tensor, V: torch.Tensor | None = None) -> Components:
    """The SVD of U·M·Vᵀ when U (d_out×k) and V (d_in×m) have orthonormal columns (V None: M is
    already k×d_in): only the small M (k×m) is decomposed, U·M·Vᵀ = (U U_M) Σ (V V_M)ᵀ — no QR of
    the big factors. Zero components dropped and signs fixed as :func:`thin_svd`."""
    U, M = U.to(torch.float64), M.to(torch.float64)
    d_in = V.shape[0] if V is not None else M.shape[1]
    if M.numel() == 0:
        return _empty(U.shape[0], d_in)
    if V is None and M.shape[1] > 2 * M.shape[0]:  # wide M: QR of Mᵀ, then an SVD of the small R
        Qm, Rm = torch.linalg.qr(M.T)
        Um, S, Vrh = torch.linalg.svd(Rm.T, full_matrices=False)
        return _signed(U @ Um, S, Qm @ Vrh.T)
    Um, S, Vh = torch.linalg.svd(M, full_matrices=False)
    right = Vh.T if V is None else V.to(torch.float64) @ Vh.T
    return _signed(U @ Um, S, right)


def polar(M: torch.Tensor) -> torch.Tensor:
    """The orthogonal polar factor of M (n×k): M = P S Qᵀ (thin SVD) → P Qᵀ, the orthonormal-column
    matrix closest to M in Frobenius norm (orthogonal Procrustes; TSV's decorrelation). O(n·k²)."""
    P, _, Qh = torch.linalg.svd(M, full_matrices=False)
    return P @ Qh


def _empty(d_out: int, d_in: int) -> Components:
    return Components(torch.zeros(d_out, 0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64),
                      torch.zeros(d_in, 0, dtype=torch.float64))


#: Cholesky-of-Gram route of ``svd_of_weighted_components``: used when every diagonal entry of R
#: (the part of each unit column orthogonal to the previous ones) is at least this; else QR.
GRAM_MIN_DIAG = 1e-3


def _gram_r(G: torch.Tensor) -> torch.Tensor | None:
    """Upper-triangular R with G = RᵀR from the Gram matrix of unit columns, or None when the
    columns are too close to dependent for the Gram route to be accurate (the caller uses QR)."""
    L, info = torch.linalg.cholesky_ex(G)
    if int(info) != 0 or float(L.diagonal().min()) < GRAM_MIN_DIAG:
        return None
    return L.T


def svd_of_weighted_components(parts: list[tuple[Components, torch.Tensor]]) -> Components:
    """Thin SVD of Σ_parts Σ_i w_i σ_i u_i v_iᵀ (Eq. 7's sum) without a tall QR when possible.

    Each part's U and V have orthonormal columns, so the Gram matrices of G_U = [U_1 … U_n] and
    G_V = [V_1 … V_n] are I plus the cross-overlaps; their Cholesky factors R_U, R_V give
    G_U = Q_U R_U exactly as a QR would. Then R_U diag(wσ) R_Vᵀ = U'ΣV'ᵀ and U = G_U R_U⁻¹U'.
    The weights stay in the k×k middle, so tiny α_i lose no precision. When the columns are nearly
    dependent (identical adapters), falls back to ``thin_svd``. Cost O((d_in+d_out)·k²) with small
    constants; k = Σ part sizes.
    """
    GU = torch.cat([c.U for c, _ in parts], dim=1)
    GV = torch.cat([c.V for c, _ in parts], dim=1)
    w = torch.cat([c.S * wt for c, wt in parts])
    d_out, d_in = GU.shape[0], GV.shape[0]
    if w.numel() == 0:
        return _empty(d_out, d_in)
    RU, RV = _gram_r(GU.T @ GU), _gram_r(GV.T @ GV)
    if RU is None or RV is None:
        return thin_svd(LowRank(GU * w, GV))
    Us, S, Vhs = torch.linalg.svd((RU * w) @ RV.T, full_matrices=False)
    U = GU @ torch.linalg.solve_triangular(RU, Us, upper=True)
    V = GV @ torch.linalg.solve_triangular(RV, Vhs.T, upper=True)
    return _signed(U, S, V)


def concat(parts: list[LowRank]) -> LowRank:
    """Σ P_i Q_iᵀ as one product [P_1 … P_n][Q_1 … Q_n]ᵀ (rank ≤ Σ k_i, exact)."""
    return LowRank(torch.cat([p.P for p in parts], dim=1), torch.cat([p.Q for p in parts], dim=1))


@dataclass(frozen=True)
class Truncation:
    """Eq. 8: rank-r factors B (d_out×r) and A (r×d_in) with ΔW ≈ B·A, and the relative error
    ‖discarded σ‖/‖σ‖ (= ‖ΔW − BA‖_F / ‖ΔW‖_F)."""

    B: torch.Tensor
    A: torch.Tensor
    rel_error: float


def truncate(comps: Components, rank: int) -> Truncation:
    """Keep the top ``rank`` components with the balanced split B = U_r Σ_r^{1/2}, A = Σ_r^{1/2} V_rᵀ.

    The output always has exactly ``rank`` columns/rows (zero-padded when fewer components exist),
    so every module of a merged adapter has the rank its config declares.
    """
    d_out, d_in = comps.U.shape[0], comps.V.shape[0]
    k = min(rank, comps.k)
    root = comps.S[:k].sqrt()
    B = torch.zeros(d_out, rank, dtype=torch.float64)
    A = torch.zeros(rank, d_in, dtype=torch.float64)
    B[:, :k] = comps.U[:, :k] * root
    A[:k, :] = (comps.V[:, :k] * root).T
    total = float(comps.S.square().sum())
    dropped = float(comps.S[k:].square().sum())
    return Truncation(B, A, (dropped / total) ** 0.5 if total > 0 else 0.0)


def truncate_lowrank(lr: LowRank, rank: int) -> Truncation:
    """Truncated SVD of P·Qᵀ to ``rank`` without forming it (SPEC §3)."""
    return truncate(thin_svd(lr), rank)


def truncate_dense(delta: torch.Tensor, rank: int, *, solver: str = "exact",
                   generator: torch.Generator | None = None, oversample: int = 16,
                   power_iters: int = 4, start: torch.Tensor | None = None) -> Truncation:
    """Truncate a dense d_out×d_in ΔW (the entry-wise methods) to ``rank``.

    ``solver="exact"``: ``torch.linalg.svd`` in float64. ``solver="randomized"``:
    Halko–Martinsson–Tropp range finder with ``oversample`` extra columns and ``power_iters``
    power iterations (QR-orthonormalised), seeded by ``generator``, in ``delta``'s dtype when it
    is float32 (the big products; the small (r+p)×d_in SVD runs in float64). ``start`` (d_in×m,
    optional): columns that span most of ΔW's dominant row space (the entry-wise methods pass the
    inputs' A_iᵀ), used as the first columns of the test matrix, followed by ``oversample``
    Gaussian ones; the range is then found with fewer power iterations. The reported
    ``rel_error`` is computed for the factors returned (‖ΔW − BA‖² = ‖ΔW‖² − ‖BA‖² because BA is
    an orthogonal projection of ΔW), so the error the user sees is the achieved one.
    """
    d_out, d_in = delta.shape
    # float32 work: a float32 norm (pairwise summation, ~1e-7 relative) is enough for the error
    total = float(torch.linalg.vector_norm(delta if delta.dtype == torch.float32 else delta.to(torch.float64))) ** 2
    if total == 0.0:
        return Truncation(torch.zeros(d_out, rank, dtype=torch.float64), torch.zeros(rank, d_in, dtype=torch.float64), 0.0)
    width = (rank if start is None else max(int(start.shape[1]), rank)) + oversample
    if solver == "exact" or width >= min(d_out, d_in):
        U, S, Vh = torch.linalg.svd(delta.to(torch.float64), full_matrices=False)
        comps = _signed(U, S, Vh.T)
        return truncate(comps, rank)
    if solver != "randomized":
        raise ValueError(f"unknown SVD solver {solver!r}")
    W = delta if delta.dtype == torch.float32 else delta.to(torch.float64)
    # the same random test matrix in either precision
    given = 0 if start is None else int(start.shape[1])
    omega = torch.randn(d_in, width - given, dtype=torch.float64, generator=generator).to(W.dtype)
    if start is not None:
        omega = torch.cat([start.to(W.dtype), omega], dim=1)
    Y = W @ omega
    for _ in range(power_iters):
        Y, _ = torch.linalg.qr(Y)
        # Wᵀ·Y as (Yᵀ·W)ᵀ: the same products, ~1.7× faster (MKL, 4096² float32: bit for bit the same
        # result at 1 and 2 threads, and the same merged files; docs/performance.md)
        Z, _ = torch.linalg.qr((Y.T @ W).T)
        Y = W @ Z
    Qy = torch.linalg.qr(Y)[0].to(torch.float64)
    Us, S, Vh = torch.linalg.svd((Qy.T.to(W.dtype) @ W).to(torch.float64), full_matrices=False)
    comps = _signed(Qy @ Us, S, Vh.T)
    tr = truncate(comps, rank)
    kept = float(comps.S[:rank].square().sum())
    return Truncation(tr.B, tr.A, max(total - kept, 0.0) ** 0.5 / total ** 0.5)


def _signed(U: torch.Tensor, S: torch.Tensor, V: torch.Tensor) -> Components:
    """Drop numerically-zero components (S is descending, so they are a suffix) and apply the
    sign convention (see ``thin_svd``)."""
    if S.numel() == 0 or S[0] <= 0:
        return _empty(U.shape[0], V.shape[0])
    n = int((S > ZERO_TOL * S[0]).sum())
    U, S, V = U[:, :n], S[:n], V[:, :n]
    peak = U.gather(0, U.abs().argmax(dim=0, keepdim=True))
    signs = torch.where(peak < 0, -1.0, 1.0).to(U.dtype)
    return Components(U * signs, S, V * signs)
