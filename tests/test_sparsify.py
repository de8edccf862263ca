"""The entry-wise building blocks of TIES / DARE / magnitude pruning, on hand-checked examples."""
from __future__ import annotations

import pytest
import torch

from tada.methods.sparsify import dare_drop, magnitude_trim, ties_merge


def test_trim_keeps_top_k_with_ties_broken_by_index():
    x = torch.tensor([3.0, -1.0, 1.0, 1.0, -1.0, 2.0])
    assert magnitude_trim(x, 0.5).tolist() == [3.0, -1.0, 0.0, 0.0, 0.0, 2.0]
    assert magnitude_trim(x, 0.01).tolist() == [3.0, 0, 0, 0, 0, 0]  # k = max(1, int(...))
    assert torch.equal(magnitude_trim(x, 1.0), x)


def test_trim_count_on_random_matrix():
    x = torch.randn(64, 48, dtype=torch.float64)
    y = magnitude_trim(x, 0.3)
    k = int(0.3 * x.numel())
    assert int((y != 0).sum()) == k
    assert y.abs().max() == x.abs().max() and (y[y != 0].abs().min() >= x.abs().flatten().sort().values[-k])


def test_dare_rescales_and_is_seeded():
    x = torch.randn(200, 100, dtype=torch.float64)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    y = dare_drop(x, 0.3, g())
    kept = y != 0
    assert abs(kept.double().mean().item() - 0.3) < 0.02
    torch.testing.assert_close(y[kept], x[kept] / 0.3)
    assert torch.equal(y, dare_drop(x, 0.3, g()))
    l1 = dare_drop(x, 0.3, g(), rescale="l1")
    assert l1.abs().sum().item() == pytest.approx(x.abs().sum().item())


def test_ties_merge_hand_example():
    a = torch.tensor([1.0, -2.0, 3.0, 0.0])
    b = torch.tensor([-3.0, -1.0, 1.0, 2.0])
    # weighted (1, 1): sums [-2, -3, 4, 2] → signs [-, -, +, +]
    # entry 0: only b agrees → -3; entry 1: both → (-2-1)/2; entry 2: both → 2; entry 3: only b → 2
    assert ties_merge([a, b], [1.0, 1.0]).tolist() == [-3.0, -1.5, 2.0, 2.0]
    # weights (2, 1): weighted a = [2, -4, 6, 0]; entry 0 sum = -1 → b wins: -3/1
    assert ties_merge([a, b], [2.0, 1.0]).tolist() == pytest.approx([-3.0, -5.0 / 3.0, 7.0 / 3.0, 2.0])


@pytest.mark.parametrize("density", [1e-6, 0.2, 0.5, 0.97])
def test_bracketed_kth_largest_is_exact_on_large_inputs(density):
    from tada.methods.sparsify import BRACKET_MIN_NUMEL, kth_largest_abs

    g = torch.Generator().manual_seed(3)
    x = torch.randn(BRACKET_MIN_NUMEL + 12345, generator=g)
    x[::7] = 0.25  # many exact ties around the middle
    k = max(1, int(density * x.numel()))
    assert kth_largest_abs(x, k) == torch.kthvalue(x.abs(), x.numel() - k + 1).values
    from tada.methods.sparsify import top_k_threshold

    threshold, above = top_k_threshold(x, k)
    assert above == int((x.abs() > threshold).sum())
    trimmed = magnitude_trim(x, density)
    assert int((trimmed != 0).sum()) == k
    threshold = torch.kthvalue(x.abs(), x.numel() - k + 1).values
    assert bool((trimmed[x.abs() > threshold] == x[x.abs() > threshold]).all())


def test_bracket_miss_falls_back(monkeypatch):
    import tada.methods.sparsify as sp

    x = torch.cat([torch.zeros(sp.BRACKET_MIN_NUMEL), torch.arange(1.0, 101.0)])  # sample sees only zeros
    assert sp.kth_largest_abs(x, 50) == 51.0
    assert sp.top_k_threshold(x, 50)[1] == 49


def test_fused_dare_ties_equals_drop_then_merge():
    """The fused float32 path (drop inside TIES's chunk loop) makes the same draws as dare_drop."""
    from tada.lowrank import LoraModule
    from tada.methods import ModuleInput, make_params, get_method
    from tada.methods.dare import dropped
    from tada.methods.dense import dense_inputs
    from tada.methods.sparsify import CHUNK, dare_chunk_drop

    g = torch.Generator().manual_seed(0)
    d = 512  # 4 chunks
    assert d * d > 2 * CHUNK
    side = lambda: LoraModule("m", torch.randn(4, d, generator=g), torch.randn(d, 4, generator=g), 0.5)  # noqa: E731
    module = ModuleInput("model.layers.0.self_attn.q_proj", side(), side(), 4)
    params = make_params(get_method("dare_ties"), {"density": 0.3, "precision": "float32", "seed": 7})
    drops = [dare_chunk_drop(0.3, module.seed_for(7, f"dare:{s}"), True) for s in ("task", "domain")]
    fused = ties_merge(dense_inputs(module, params), [1.0, 1.0], drops)
    composed = ties_merge(dropped(module, params), [1.0, 1.0])
    assert fused.dtype == torch.float32 and torch.equal(fused, composed)
    kept = float((dropped(module, params)[0] != 0).float().mean())
    assert abs(kept - 0.3) < 0.01  # a Bernoulli(density) draw
