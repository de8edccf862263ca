"""TaDA invariants: Proposition 1 (scale invariance), edge cases that must never produce NaN,
and ablation switches that change exactly what they say."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tada.lowrank import LoraModule
from tada.methods import ModuleInput, get_method, make_params
from tada.methods.linear import weighted_concat
from tada.lowrank import truncate_lowrank, LowRank

import reference as ref

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
    lin = weighted_concat(m, (0.5, 0.5))
    want = truncate_lowrank(LowRank(lin.B, lin.A.T), 5)
    assert torch.allclose(res.B @ res.A, want.B @ want.A, rtol=1e-9, atol=1e-9)


#: A module where δ = 0.1 drops some but not all components of each adapter (checked in the tests):
#: 224×240, r = 8 each; overlaps of unrelated directions ~1/√d straddle 0.1 at this width.
FILTERED = dict(seed=1, d_out=224, d_in=240, r_t=8, r_d=8)


def dropped_some_not_all(res) -> None:
    assert "notes" not in res.info or not any("fell back" in n for n in res.info["notes"])
    for side in ("task", "domain"):
        k, kept = len(res.info[f"sigma_{side}"]), len(res.info[f"kept_{side}"])
        assert 0 < kept < k, (side, kept, k)


def test_keep_high_overlap_keeps_the_complement():
    m = module(**FILTERED)
    full, high = run(m, delta=0.1), run(m, delta=0.1, keep_high_overlap=True)
    dropped_some_not_all(full)
    for side in ("task", "domain"):
        k = len(full.info[f"sigma_{side}"])
        kept_full, kept_high = set(full.info[f"kept_{side}"]), set(high.info[f"kept_{side}"])
        assert kept_high == set(range(k)) - kept_full, side
        assert kept_high == {i for i, o in enumerate(full.info[f"overlap_{side}"]) if o >= 0.1}, side
    # everything else as in full TaDA: same gate, same per-component weights
    assert high.info["alpha"] == full.info["alpha"] and high.info["alpha_task"] == full.info["alpha_task"]


def test_random_filter_drops_as_many_and_is_seeded():
    m = module(**FILTERED)
    full = run(m, delta=0.1)
    dropped_some_not_all(full)
    a, b = run(m, delta=0.1, random_filter=True), run(m, delta=0.1, random_filter=True)
    c = run(m, delta=0.1, random_filter=True, seed=1)
    for res in (a, c):
        for side in ("task", "domain"):
            assert len(res.info[f"kept_{side}"]) == len(full.info[f"kept_{side}"]), side
    # same seed: the same draw, the same bytes
    assert a.info["kept_task"] == b.info["kept_task"] and a.info["kept_domain"] == b.info["kept_domain"]
    assert torch.equal(a.A, b.A) and torch.equal(a.B, b.B)
    # another seed: another draw (8 choose 3 / 8 choose 2 subsets; seeds 0 and 1 differ on both sides)
    assert a.info["kept_task"] != c.info["kept_task"] and a.info["kept_domain"] != c.info["kept_domain"]
    assert not torch.equal(a.B @ a.A, c.B @ c.A)
    # the draw is not just full TaDA's kept set
    assert (a.info["kept_task"], a.info["kept_domain"]) != (full.info["kept_task"], full.info["kept_domain"])


def dense_of(lora: LoraModule) -> torch.Tensor:
    return float(lora.scaling) * lora.B.double() @ lora.A.double()


@pytest.mark.parametrize("ablation", ["keep_high_overlap", "random_filter", "none"])
def test_filter_ablations_match_dense_oracle(ablation):
    """keep_high_overlap / random_filter (and full TaDA) against reference.tada_dense (SPEC §6)."""
    m = module(**FILTERED)
    params = {"delta": 0.1, **({ablation: True} if ablation != "none" else {})}
    res = run(m, **params)
    want, info = ref.tada_dense(dense_of(m.task), dense_of(m.domain), m.h_domain, m.h_general,
                                tau=1.2, rank=m.rank, delta=0.1,  # v_proj: τ = 1.2 (SPEC §5)
                                keep_high_overlap=ablation == "keep_high_overlap",
                                random_filter=(0, NAME) if ablation == "random_filter" else None)
    assert 0 < len(info["kept_task"]) < 8 and 0 < len(info["kept_domain"]) < 8
    assert res.info["kept_task"] == info["kept_task"] and res.info["kept_domain"] == info["kept_domain"]
    got = res.B.double() @ res.A.double()
    assert float((got - want).norm() / want.norm()) <= 1e-9


@pytest.mark.parametrize("control", ["random", "scale"])
def test_energy_controls_match_dense_oracle_and_remove_the_filters_energy(control):
    """Issue #25's energy-matched controls: every component enters, each adapter's σ_i scaled so
    that Σ(1 − f_i²)σ_i² is exactly the energy full TaDA's filter drops from that adapter."""
    from tada.methods.tada import energy_matched

    m = module(**FILTERED)
    full = run(m, delta=0.1)
    dropped_some_not_all(full)
    res = run(m, delta=0.1, energy_control=control)
    want, _ = ref.tada_dense(dense_of(m.task), dense_of(m.domain), m.h_domain, m.h_general, tau=1.2, rank=m.rank,
                             delta=0.1, energy_control=(control, 0, NAME))
    got = res.B.double() @ res.A.double()
    assert float((got - want).norm() / want.norm()) <= 1e-9
    full_kept = (full.info["kept_task"], full.info["kept_domain"])
    assert not torch.allclose(got, full.B.double() @ full.A.double(), rtol=1e-3)
    for side, kept in zip(("task", "domain"), full_kept):
        S = torch.tensor(full.info[f"sigma_{side}"], dtype=torch.float64)
        keep = torch.zeros(len(S), dtype=torch.bool)
        keep[kept] = True
        f = energy_matched(S, keep, control, 0, NAME, side)
        removed, filtered = float(((1 - f ** 2) * S ** 2).sum()), float((S[~keep] ** 2).sum())
        assert filtered > 0 and removed == pytest.approx(filtered, rel=1e-12)
        if control == "scale":
            assert len(set(f.tolist())) == 1 and len(res.info[f"kept_{side}"]) == len(S)
        else:  # some whole components dropped, at most one shrunk
            assert ((f > 0) & (f < 1)).sum() <= 1 and (f == 0).any()
            assert res.info[f"kept_{side}"] == (f > 0).nonzero().flatten().tolist()


def test_energy_control_is_one_ablation_among_the_filters():
    with pytest.raises(Exception, match="at most one"):
        make_params(SPEC, {"energy_control": "scale", "random_filter": True})
    with pytest.raises(Exception, match="energy_control"):
        make_params(SPEC, {"energy_control": "other"})


def test_layer_alpha_uses_module_alpha_everywhere():
    res = run(module(8), layer_alpha=True)
    assert set(res.info["alpha_task"]) == {res.info["alpha"]} == set(res.info["alpha_domain"])


def test_tau_scale_moves_every_gate_towards_the_task(tmp_path):
    """tau_scale multiplies every τ of Eq. 3: above 1 each module's α rises, 1 changes nothing."""
    import tada
    from conftest import random_stats, write_adapter

    task, domain = write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)
    from conftest import SHAPES

    stats = {"domain_stats": random_stats(SHAPES, seed=3), "general_stats": random_stats(SHAPES, seed=4)}
    alphas = {}
    for scale in (1.0, 2.0):
        rep = tada.merge(task, domain, method="tada", params={"tau_scale": scale, "no_filter": True}, progress=False,
                         **stats).report
        alphas[scale] = {n: m["alpha"] for n, m in rep["modules"].items() if "alpha" in m}
    default = tada.merge(task, domain, method="tada", params={"no_filter": True}, progress=False, **stats).report
    assert alphas[1.0] == {n: m["alpha"] for n, m in default["modules"].items() if "alpha" in m}
    assert alphas[2.0] and all(alphas[2.0][n] > alphas[1.0][n] for n in alphas[1.0] if alphas[1.0][n] < 1.0)
