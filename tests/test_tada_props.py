"""TaDA invariants: Proposition 1 (scale invariance), edge cases that must never produce NaN,
and ablation switches that change exactly what they say."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tada.adapters import LoraModule
from tada.methods import ModuleInput, get_method, make_params
from tada.methods.linear import weighted_concat
from tada.lowrank import truncate_lowrank, LowRank

SPEC = get_method("tada")
NAME = "model.layers.3.self_attn.v_proj"


def module(seed: int, d_out=40, d_in=48, r_t=4, r_d=5, c_t=1.0, c_d=1.0, hd=None, hg=None, rank=None):
    g = torch.Generator().manual_seed(seed)
    t = LoraModule(NAME, torch.randn(r_t, d_in, generator=g), torch.randn(d_out, r_t, generator=g), c_t)
    d = LoraModule(NAME, torch.randn(r_d, d_in, generator=g), torch.randn(d_out, r_d, generator=g), c_d)
    hd = torch.randn(d_in, generator=g, dtype=torch.float64) if hd is None else hd
    hg = torch.randn(d_in, generator=g, dtype=torch.float64) if hg is None else hg
    return ModuleInput(NAME, t, d, rank or max(r_t, r_d), hd, hg)


def run(m, **params):
    return SPEC.fn(m, make_params(SPEC, params))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), log_c=st.floats(-6, 6), side=st.sampled_from(["task", "domain"]))
def test_proposition1_scale_invariance(seed, log_c, side):
    """Scaling either adapter by any c > 0 leaves s, α and every s_i, α_i unchanged."""
    c = math.exp(log_c)
    a = run(module(seed))
    b = run(module(seed, c_t=c if side == "task" else 1.0, c_d=c if side == "domain" else 1.0))
    for key in ("s", "alpha"):
        assert math.isclose(a.info[key], b.info[key], rel_tol=1e-9, abs_tol=1e-12)
    for key in ("s_task", "alpha_task", "s_domain", "alpha_domain", "overlap_task", "overlap_domain"):
        for x, y in zip(a.info[key], b.info[key]):
            assert math.isclose(x, y, rel_tol=1e-7, abs_tol=1e-12), key


def finite(result) -> bool:
    return bool(torch.isfinite(result.A).all() and torch.isfinite(result.B).all())


def test_zero_task_delta_takes_domain_unchanged():
    m = module(0)
    zero = LoraModule(NAME, torch.zeros_like(m.task.A), m.task.B, 1.0)
    res = run(ModuleInput(NAME, zero, m.domain, 5, m.h_domain, m.h_general))
    want = m.lowrank("domain").dense()
    assert torch.allclose(res.B @ res.A, want, rtol=1e-9, atol=1e-9)
    assert "unchanged" in res.info["notes"][0]


def test_zero_probe_means_give_s_one_and_no_nan():
    m = module(1)
    zero = torch.zeros_like(m.h_domain)
    res = run(ModuleInput(NAME, m.task, m.domain, 5, zero, zero))
    assert res.info["s"] == 1.0 and finite(res)
    assert all(s == 1.0 for s in res.info["s_task"] + res.info["s_domain"])
    assert any("probe mean is zero" in n for n in res.info["notes"])


def test_general_probe_silent_gives_infinite_s_and_alpha_zero():
    m = module(2)
    res = run(ModuleInput(NAME, m.task, m.domain, 5, m.h_domain, torch.zeros_like(m.h_domain)))
    assert res.info["s"] == math.inf and res.info["alpha"] == 0.0 and finite(res)


def test_identical_adapters_fall_back_to_no_filter():
    m = module(3)
    res = run(ModuleInput(NAME, m.task, m.task, 4, m.h_domain, m.h_general), delta=0.1)
    assert any("fell back to no_filter" in n for n in res.info["notes"]) and finite(res)
    assert len(res.info["kept_task"]) == 4


def test_fixed_half_without_filter_is_linear_half_truncated():
    m = module(4)
    res = run(m, fixed_alpha=0.5, no_filter=True)
    lin = weighted_concat(m, 0.5, 0.5)
    want = truncate_lowrank(LowRank(lin.B, lin.A.T), 5)
    assert torch.allclose(res.B @ res.A, want.B @ want.A, rtol=1e-9, atol=1e-9)


def test_keep_high_overlap_keeps_the_complement():
    m = module(5, d_out=8, d_in=8)  # small: many overlaps ≥ δ
    full, high = run(m), run(m, keep_high_overlap=True)
    n_t = len(full.info["sigma_task"])
    if "fell back" not in " ".join(full.info.get("notes", [])):
        assert sorted(full.info["kept_task"] + high.info["kept_task"]) == list(range(n_t))


def test_random_filter_drops_as_many_and_is_seeded():
    m = module(6, d_out=200, d_in=220)
    full = run(m, delta=0.1)
    assert len(full.info["kept_task"]) == 3 and len(full.info["kept_domain"]) == 4  # one dropped each
    a, b, c = (run(m, random_filter=True, delta=0.1), run(m, random_filter=True, delta=0.1),
               run(m, random_filter=True, seed=7, delta=0.1))
    assert len(a.info["kept_task"]) == len(full.info["kept_task"])
    assert len(a.info["kept_domain"]) == len(full.info["kept_domain"])
    assert a.info["kept_task"] == b.info["kept_task"] and torch.equal(a.A, b.A)
    assert len(c.info["kept_task"]) == len(a.info["kept_task"])


def test_layer_alpha_uses_module_alpha_everywhere():
    res = run(module(8), layer_alpha=True)
    assert set(res.info["alpha_task"]) == {res.info["alpha"]} == set(res.info["alpha_domain"])
