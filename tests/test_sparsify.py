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
    from tada.methods.sparsify import CHUNK, dare_drops

    g = torch.Generator().manual_seed(0)
    d = 768  # several chunks
    assert d * d > 2 * CHUNK
    side = lambda: LoraModule("m", torch.randn(4, d, generator=g), torch.randn(d, 4, generator=g), 0.5)  # noqa: E731
    module = ModuleInput("model.layers.0.self_attn.q_proj", side(), side(), 4)
    params = make_params(get_method("dare_ties"), {"density": 0.3, "precision": "float32", "seed": 7})
    drops = dare_drops(d * d, 0.3, [module.seed_for(7, f"dare:{s}") for s in ("task", "domain")], True)
    fused = ties_merge(dense_inputs(module, params), [1.0, 1.0], drops)
    composed = ties_merge(dropped(module, params), [1.0, 1.0])
    assert fused.dtype == torch.float32 and torch.equal(fused, composed)
    kept = float((dropped(module, params)[0] != 0).float().mean())
    assert abs(kept - 0.3) < 0.01  # a Bernoulli(density) draw


def test_order_free_passes_give_the_same_bytes_on_every_thread_count(monkeypatch):
    """Large inputs run the order-free chunk passes (threshold counting, magnitude trim, TIES and
    sum merges) on one Python thread per torch thread: the results are byte-identical to one
    thread, also when the trim keeps only some tied entries (that pass stays in index order), and
    when the threaded passes take the chunks in reverse order (a deterministic stand-in for any
    interleaving of the threads)."""
    from tada.methods import sparsify
    from tada.methods.sparsify import merge_entrywise, threshold_rule, trim_rule

    g = torch.Generator().manual_seed(3)
    deltas = [torch.randn(1536, 1024, generator=g) for _ in range(3)]  # 1.5M entries: the threaded path
    big = torch.randn(1536, 1024, generator=g)
    # half the entries at one magnitude (±0.25), the others above 1: the top 90% cut through the ties
    tied = torch.where(torch.rand(1536, 1024, generator=g) < 0.5, 0.25 * big.sign(), big.sign() * (1 + big.abs()))
    before = torch.get_num_threads()
    real = sparsify._each_chunk

    def reversed_order(n, work, *, ordered=False):  # any order must give the same bytes where allowed
        if ordered:
            return real(n, work, ordered=True)
        return list(reversed([work(a, b) for a, b in reversed(list(sparsify._chunks(n)))]))

    results = []
    try:
        for threads in (1, 2, 3, "reversed"):
            if threads == "reversed":
                monkeypatch.setattr(sparsify, "_each_chunk", reversed_order)
            torch.set_num_threads(1 if threads == "reversed" else threads)
            trims = [trim_rule(d, 0.5) for d in deltas]
            tied_rule = threshold_rule(tied.reshape(-1), int(0.9 * tied.numel()))
            results.append([trims, tied_rule, magnitude_trim(deltas[1], 0.4), magnitude_trim(tied, 0.9),
                            merge_entrywise(deltas, [0.5, 0.3, 0.2], "ties", trims=trims),
                            merge_entrywise([tied, deltas[1]], [1.0, 1.0], "ties",
                                            trims=[trim_rule(tied, 0.9), None]),
                            merge_entrywise(deltas, [0.5, 0.3, 0.2], "sum")])
    finally:
        torch.set_num_threads(before)
        monkeypatch.setattr(sparsify, "_each_chunk", real)
    assert not results[0][1].every_tie_kept  # the ordered case is exercised
    for other in results[1:]:
        assert other[0] == results[0][0] and other[1] == results[0][1]
        for a, b in zip(other[2:], results[0][2:]):
            assert a.numpy().tobytes() == b.numpy().tobytes()
    assert sparsify.BRACKET_MIN_NUMEL <= deltas[0].numel()


@pytest.mark.parametrize("method", ["ties", "dare_linear", "dare_ties", "magnitude_prune"])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_workspace_buffers_change_no_byte(tmp_path, method, precision):
    """The engine forms each module's ΔW in buffers reused from module to module (``Workspace``)
    and merges in place: every module's result is the bytes of the method run on that module alone
    with fresh tensors, whatever the order of sizes (the buffer is grown for a larger module, viewed
    smaller and reshaped after)."""
    import tada
    from conftest import write_adapter
    from tada.adapters import load_adapter, lora_keys
    from tada.methods import ModuleInput, get_method, make_params

    shapes = {"model.layers.0.mlp.up_proj": (96, 64), "model.layers.0.self_attn.q_proj": (48, 64),
              "model.layers.1.mlp.down_proj": (64, 128), "model.layers.1.mlp.up_proj": (128, 64)}
    task = write_adapter(tmp_path / "task", shapes, r=4, alpha=8, seed=0)
    domain = write_adapter(tmp_path / "domain", shapes, r=4, alpha=8, seed=1)
    params = {"precision": precision, "svd_solver": "randomized" if precision == "float32" else "exact"}
    merged = tada.merge(task, domain, method=method, params=params, progress=False).tensors
    spec = get_method(method)
    p = make_params(spec, params, n_inputs=2)
    t, d = load_adapter(task), load_adapter(domain)
    for name in shapes:
        alone = spec.fn(ModuleInput(name, t.module(name), d.module(name), 4), p)
        ka, kb = lora_keys(name)
        assert torch.equal(merged[ka], alone.A.to(merged[ka].dtype)), name
        assert torch.equal(merged[kb], alone.B.to(merged[kb].dtype)), name


def test_workspace_grows_and_keeps_one_buffer_per_input():
    from tada.methods.base import Workspace

    ws = Workspace()
    small = ws.buffer(0, (4, 8), torch.float32)
    assert small.shape == (4, 8) and small.dtype == torch.float32 and small.is_contiguous()
    big = ws.buffer(0, (16, 8), torch.float64)  # grown: 1,024 bytes
    again = ws.buffer(0, (8, 4), torch.float32)  # a view of the grown buffer
    assert again.data_ptr() == big.data_ptr() and big.dtype == torch.float64
    assert ws.buffer(1, (4, 8), torch.float32).data_ptr() != big.data_ptr()
    assert sorted(ws._raw) == [0, 1] and ws._raw[0].numel() == 16 * 8 * 8


def test_dare_masks_drawn_in_parallel_are_each_generators_own_draws():
    """``dare_drops`` draws the inputs' masks in parallel threads (large ΔW, two torch threads):
    each mask is still its own generator's stream, ``uniform < density`` entry by entry."""
    import numpy as np

    from tada.methods.sparsify import BRACKET_MIN_NUMEL, CHUNK, dare_drops

    n = BRACKET_MIN_NUMEL + CHUNK + 123  # a partial last chunk
    generators = lambda: [torch.Generator().manual_seed(s) for s in (11, 12, 13)]  # noqa: E731
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        drops = dare_drops(n, 0.3, generators(), rescale=True)
    finally:
        torch.set_num_threads(before)
    assert drops.divisor == 0.3 and len(drops.keep) == 3
    for keep, g in zip(drops.keep, generators()):
        assert np.array_equal(keep, torch.rand(n, generator=g).numpy() < 0.3)
    assert dare_drops(n, 0.3, generators(), rescale=False).divisor is None


@pytest.mark.parametrize("density", [0.5, 0.3, 0.1, 1 / 3, 0.9, 1e-7, 0.99999994, 1 - 1e-9, 2 ** -24, 3 * 2 ** -25])
def test_dare_masks_are_torch_rand_below_density(density):
    """``dare_drops`` draws int32 ``random_`` and compares the low 24 bits (``keep_below``): the
    masks are ``torch.rand(…) < density`` on the float32 uniforms, also at densities that round
    when made float32 (1 − 1e-9 → 1.0) or sit on and between the uniforms' 2⁻²⁴ grid, and the
    generator is left where ``torch.rand`` leaves it (the next draw is the same)."""
    import numpy as np

    from tada.methods.sparsify import CHUNK, dare_drops, keep_below

    n = 2 * CHUNK + 777
    drawn, made = torch.Generator().manual_seed(21), torch.Generator().manual_seed(21)
    keep = dare_drops(n, density, [drawn], rescale=True).keep[0]
    want = torch.rand(n, generator=made).numpy() < density
    assert np.array_equal(keep, want)
    assert torch.equal(drawn.get_state(), made.get_state())
    # the threshold itself, on every value a float32 uniform can take (m·2⁻²⁴, m < 2²⁴)
    grid = np.arange(1 << 24, dtype=np.int64)
    assert np.array_equal(grid < keep_below(density), grid.astype(np.float32) * np.float32(2 ** -24) < density)


def _ties_reference(deltas: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """TIES's election and disjoint mean, written once more in torch from the docstring of
    ``merge_entrywise`` (divisor 0 → 1)."""
    ws = [torch.tensor(w, dtype=deltas[0].dtype) for w in weights]
    weighted = [d if w == 1 else d * wt for d, w, wt in zip(deltas, weights, ws)]
    total = weighted[0] + weighted[1] if len(weighted) > 1 else weighted[0].clone()
    for wd in weighted[2:]:
        total = total + wd
    negative = total < 0
    agree = [((wd > 0) ^ negative) & (wd != 0) for wd in weighted]
    numerator, divisor = weighted[0] * agree[0], ws[0] * agree[0]
    for wd, wt, a in zip(weighted[1:], ws[1:], agree[1:]):
        numerator = numerator + wd * a
        divisor = divisor + wt * a
    return numerator / (divisor + (divisor == 0))


@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.7, 0.4), (1.0, -0.5), (0.3, 0.3, 0.5), (2.0,)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ties_merge_is_the_reference_bit_for_bit(weights, dtype):
    """The chunked TIES pass (scratch buffers; with every weight positive, an all-disagree divisor
    is the smallest weight instead of 1) writes the reference formula's bits, on entries with
    zeros of both signs, exact cancellations, products that underflow and values across many
    binades, on the threaded path (a large input) and in one chunk."""
    g = torch.Generator().manual_seed(8)
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    for n in (1 << 21, 999):
        deltas = [(torch.randn(n, generator=g) * torch.exp(8 * torch.randn(n, generator=g))).to(dtype)
                  for _ in weights]
        if len(deltas) > 1:
            deltas[1][::5] = -deltas[0][::5] * (weights[0] / weights[1])  # sums that cancel (some exactly)
            deltas[1][1::7] = 0.0
            deltas[1][2::7] = -0.0
            deltas[0][3::7] = -0.0
            deltas[0][4::11] = 1e-30  # tiny: their products with the others underflow
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(2)
            got = ties_merge(deltas, list(weights))
        finally:
            torch.set_num_threads(before)
        assert torch.equal(got.view(bits), _ties_reference(deltas, list(weights)).view(bits))


@pytest.mark.parametrize("density", [0.5, 0.3, 0.1, 0.123456789, 0.9, 1 / 3])
def test_dare_rescale_is_torch_div_bit_for_bit(density):
    """The fused pass rescales with numpy (``_kept``): the bytes of torch's ``div_`` by the density,
    which the drop used before, over values spanning many binades."""
    from tada.methods.sparsify import _kept

    g = torch.Generator().manual_seed(5)
    x = torch.randn(1 << 18, generator=g) * torch.exp(5 * torch.randn(1 << 18, generator=g))
    keep = (torch.rand(1 << 18, generator=g) < density).numpy()
    want = torch.from_numpy(x.numpy() * keep).div_(density)
    assert torch.equal(torch.from_numpy(_kept(x.numpy(), keep, density)), want)
    assert torch.equal(torch.from_numpy(_kept(x.numpy(), keep, None)), torch.from_numpy(x.numpy() * keep))
