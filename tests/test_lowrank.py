"""The low-rank route against dense float64 references (SPEC §3): exact to rounding."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tada.lowrank import (LowRank, concat, svd_of_weighted_components, thin_svd, truncate, truncate_dense,
                          truncate_lowrank)


def rand_lr(seed: int, d_out: int, d_in: int, k: int, scale: float = 1.0) -> LowRank:
    g = torch.Generator().manual_seed(seed)
    return LowRank(torch.randn(d_out, k, generator=g, dtype=torch.float64) * scale,
                   torch.randn(d_in, k, generator=g, dtype=torch.float64))


def rel(a, b):
    return float((a - b).norm() / b.norm())


shapes = st.tuples(st.integers(3, 60), st.integers(3, 60), st.integers(1, 12))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shape=shapes, log_scale=st.floats(-8, 8))
def test_thin_svd_reconstructs_and_is_orthonormal(seed, shape, log_scale):
    d_out, d_in, k = shape
    lr = rand_lr(seed, d_out, d_in, k, 10.0 ** log_scale)
    c = thin_svd(lr)
    assert rel(c.U @ torch.diag(c.S) @ c.V.T, lr.dense()) <= 1e-10
    eye = torch.eye(c.k, dtype=torch.float64)
    assert torch.allclose(c.U.T @ c.U, eye, atol=1e-10) and torch.allclose(c.V.T @ c.V, eye, atol=1e-10)
    ref = torch.linalg.svdvals(lr.dense())[: c.k]
    assert torch.allclose(c.S, ref, rtol=1e-9, atol=1e-12 * float(ref[0]))
    # sign convention: the largest-magnitude entry of every u is positive
    idx = c.U.abs().argmax(0)
    assert bool((c.U[idx, torch.arange(c.k)] > 0).all())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shape=shapes, rank=st.integers(1, 20), near_copy=st.booleans())
def test_weighted_component_sum_equals_dense(seed, shape, rank, near_copy):
    d_out, d_in, k = shape
    a = thin_svd(rand_lr(seed, d_out, d_in, k))
    b_lr = rand_lr(seed + 1, d_out, d_in, k)
    if near_copy:  # identical directions: the Gram route must fall back to QR
        b_lr = LowRank(a.U * a.S * 2.0, a.V)
    b = thin_svd(b_lr)
    g = torch.Generator().manual_seed(seed)
    wa, wb = torch.rand(a.k, generator=g, dtype=torch.float64), torch.rand(b.k, generator=g, dtype=torch.float64)
    wa[0] = 1e-30  # tiny weights keep their precision
    dense = a.U @ torch.diag(a.S * wa) @ a.V.T + b.U @ torch.diag(b.S * wb) @ b.V.T
    c = svd_of_weighted_components([(a, wa), (b, wb)])
    assert rel(c.U @ torch.diag(c.S) @ c.V.T, dense) <= 1e-9
    tr = truncate(c, rank)
    U, S, Vh = torch.linalg.svd(dense, full_matrices=False)
    want = U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]
    assert rel(tr.B @ tr.A, want) <= 1e-8 or float(want.norm()) == 0
    err = float((S[rank:].square().sum() / S.square().sum()).sqrt())
    assert abs(tr.rel_error - err) <= 1e-9


def test_truncate_lowrank_pads_to_rank_and_matches_dense():
    lr = concat([rand_lr(0, 50, 40, 3), rand_lr(1, 50, 40, 2).scaled(0.5)])
    tr = truncate_lowrank(lr, 8)  # only 5 components exist: zero-padded to rank 8
    assert tr.B.shape == (50, 8) and tr.A.shape == (8, 40) and tr.rel_error == 0.0
    assert rel(tr.B @ tr.A, lr.dense()) <= 1e-12
    # balanced split: column norms of B equal row norms of A
    assert torch.allclose(tr.B.norm(dim=0), tr.A.norm(dim=1))


def test_randomized_dense_truncation_reports_exact_error():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(300, 200, generator=g, dtype=torch.float64)
    exact = truncate_dense(W, 10, solver="exact")
    rnd = truncate_dense(W, 10, solver="randomized", generator=torch.Generator().manual_seed(1))
    achieved = float((W - rnd.B @ rnd.A).norm() / W.norm())
    assert abs(rnd.rel_error - achieved) <= 1e-10
    assert exact.rel_error <= rnd.rel_error <= exact.rel_error * 1.01


@pytest.mark.parametrize("wide", [True, False])
def test_svd_in_bases_is_the_svd_of_the_product(wide):
    """U·M·Vᵀ with orthonormal U, V: decomposing only M gives the product's SVD (same ΔW, same
    singular values as the dense SVD), also when V is None and M is wide (the QR route)."""
    from tada.lowrank import svd_in_bases

    g = torch.Generator().manual_seed(3)
    U = torch.linalg.qr(torch.randn(40, 6, generator=g, dtype=torch.float64))[0]
    if wide:
        M, V = torch.randn(6, 30, generator=g, dtype=torch.float64), None
        dense = U @ M
    else:
        M = torch.randn(6, 5, generator=g, dtype=torch.float64)
        V = torch.linalg.qr(torch.randn(30, 5, generator=g, dtype=torch.float64))[0]
        dense = U @ M @ V.T
    c = svd_in_bases(U, M, V)
    assert torch.allclose((c.U * c.S) @ c.V.T, dense, atol=1e-12)
    assert torch.allclose(c.S, torch.linalg.svdvals(dense)[: c.k], atol=1e-12)
    assert torch.allclose(c.U.T @ c.U, torch.eye(c.k, dtype=torch.float64), atol=1e-12)
