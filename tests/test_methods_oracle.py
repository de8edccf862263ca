"""Every method against a naive dense float64 oracle written from the SPEC (relative error ≤ 1e-6)."""
from __future__ import annotations

import pytest
import torch

import tada
from tada.adapters import load_adapter
from tada.methods import ModuleInput, get_method, make_params
from tada.methods.ties import ties_dense

import reference as ref
from conftest import dense_delta, merged_delta, random_stats, write_adapter

BIG = {
    "model.layers.0.self_attn.q_proj": (320, 256),
    "model.layers.0.self_attn.v_proj": (64, 256),
    "model.layers.1.self_attn.o_proj": (256, 320),
}
#: Output rank per module: max(r_T, r_D) after the domain adapter's rank_pattern.
RANK = {"model.layers.0.self_attn.q_proj": 6, "model.layers.0.self_attn.v_proj": 5,
        "model.layers.1.self_attn.o_proj": 6}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / max(b.norm(), 1e-300))


@pytest.fixture
def big_pair(tmp_path):
    """d_in ≠ d_out, r_T=4 / r_D=6 with rsLoRA and a rank_pattern; one shared direction per module
    so that the overlap filter drops something."""
    task = write_adapter(tmp_path / "task", BIG, r=4, alpha=8, seed=0)
    domain = write_adapter(tmp_path / "domain", BIG, r=6, alpha=12, seed=1, use_rslora=True,
                           rank_pattern={"v_proj": 5}, alpha_pattern={"o_proj": 7})
    from safetensors.torch import load_file, save_file

    t = load_file(str(task / "adapter_model.safetensors"))
    d = load_file(str(domain / "adapter_model.safetensors"))
    for name in BIG:
        a, b = f"base_model.model.{name}.lora_A.weight", f"base_model.model.{name}.lora_B.weight"
        d[a][0] = t[a][0] * 3.0
        d[b][:, 0] = t[b][:, 0] * 3.0
    save_file(d, str(domain / "adapter_model.safetensors"))
    return task, domain


def run(task, domain, method, params=None, **kw):
    return tada.merge(task, domain, method=method, params=params, domain_stats=random_stats(BIG, 1),
                      general_stats=random_stats(BIG, 2), progress=False, **kw)


@pytest.mark.parametrize("method,weights", [("linear", (0.5, 0.5)), ("linear", (0.3, 1.7)),
                                            ("cat", (1.0, 1.0)), ("cat", (-0.5, 2.0)),
                                            ("task_arithmetic", (1.0, 1.0))])
def test_exact_methods_equal_weighted_sum(big_pair, method, weights):
    task, domain = big_pair
    params = {"weights": weights} if method != "task_arithmetic" else {}
    res = run(task, domain, method, params)
    for name in BIG:
        want = weights[0] * dense_delta(task, name) + weights[1] * dense_delta(domain, name)
        assert rel(merged_delta(res.tensors, name), want) <= 1e-6
    # exact methods keep every factor: rank r_T + r_D (v_proj: 4 + 5)
    assert res.config["r"] == 10 and set(res.config["rank_pattern"].values()) == {9}


def test_svd_equals_truncated_weighted_sum(big_pair):
    task, domain = big_pair
    res = run(task, domain, "svd", {"weights": (0.5, 0.5)})
    for name in BIG:
        want = ref.truncate(0.5 * dense_delta(task, name) + 0.5 * dense_delta(domain, name), RANK[name])
        assert rel(merged_delta(res.tensors, name), want) <= 1e-6
        assert 0 < res.report["modules"][name]["rel_error"] < 1


def test_rank_override(big_pair):
    task, domain = big_pair
    res = run(task, domain, "svd", rank=3)
    assert res.config["r"] == 3 and res.config["rank_pattern"] == {}


@pytest.mark.parametrize("density", [0.3, 0.5, 0.7])
def test_ties_dense_matches_oracle(big_pair, density):
    task, domain = big_pair
    t, d = load_adapter(task), load_adapter(domain)
    name = "model.layers.0.self_attn.v_proj"
    module = ModuleInput(name, t.module(name), d.module(name), 6)
    params = make_params(get_method("ties"), {"density": density, "weights": (0.7, 1.3)})
    want = ref.ties_dense(dense_delta(task, name), dense_delta(domain, name), density, (0.7, 1.3))
    assert rel(ties_dense(module, params), want) <= 1e-12


def test_ties_and_magnitude_prune_truncate_exactly(big_pair):
    task, domain = big_pair
    for method in ("ties", "magnitude_prune"):
        res = run(task, domain, method, {"density": 0.5, "svd_solver": "exact"})
        for name in BIG:
            WT, WD = dense_delta(task, name), dense_delta(domain, name)
            if method == "ties":
                dense = ref.ties_dense(WT, WD, 0.5, (1.0, 1.0))
            else:
                dense = 0.5 * ref.topk(WT, 0.5) + 0.5 * ref.topk(WD, 0.5)
            want = ref.truncate(dense, RANK[name])
            assert rel(merged_delta(res.tensors, name), want) <= 1e-6, (method, name)
            err = float((dense - want).norm() / dense.norm())
            assert res.report["modules"][name]["rel_error"] == pytest.approx(err, rel=1e-6)


def test_randomized_truncation_close_to_exact(big_pair):
    task, domain = big_pair
    exact = run(task, domain, "ties", {"svd_solver": "exact"})
    rand = run(task, domain, "ties", {"svd_solver": "randomized", "precision": "float64"})
    fast = run(task, domain, "ties", {"svd_solver": "randomized"})  # auto precision: float32
    for name in BIG:
        e, r = exact.report["modules"][name]["rel_error"], rand.report["modules"][name]["rel_error"]
        assert e <= r <= e * (1 + 1e-3) + 1e-12  # same matrix: never better than the optimum
        assert fast.report["modules"][name]["precision"] == "float32"
        assert fast.report["modules"][name]["rel_error"] == pytest.approx(e, rel=1e-3)
        assert rel(merged_delta(fast.tensors, name), merged_delta(exact.tensors, name)) <= 1e-3


@pytest.mark.parametrize("params", [
    {}, {"no_filter": True}, {"fixed_alpha": 0.7}, {"fixed_alpha": 0.5, "no_filter": True},
    {"layer_alpha": True}, {"global_tau": 1.0}, {"beta": 2.0, "delta": 0.3, "overlap_lambda": 0.8},
    {"tau": {"value": 2.0, "o_proj": 0.5}}, {"delta": 0.1}, {"delta_drop": 0.2},
    {"delta_drop": 0.2, "filter_side": "task"}, {"delta": 0.1, "filter_side": "task"},
    {"delta": 0.1, "keep_high_overlap": True}, {"delta": 0.1, "random_filter": True, "seed": 3},
    {"delta_drop": 0.2, "keep_high_overlap": True, "filter_side": "task"},
])
def test_tada_matches_dense_oracle(big_pair, params):
    task, domain = big_pair
    res = run(task, domain, "tada", params)
    sd, sg = random_stats(BIG, 1), random_stats(BIG, 2)
    taus = {"model.layers.0.self_attn.q_proj": 1.0, "model.layers.0.self_attn.v_proj": 1.2,
            "model.layers.1.self_attn.o_proj": 1.5}
    if "global_tau" in params:
        taus = dict.fromkeys(taus, params["global_tau"])
    if "tau" in params:
        taus["model.layers.0.self_attn.v_proj"] = 2.0
        taus["model.layers.1.self_attn.o_proj"] = 0.5
    lam = params.get("overlap_lambda", 0.5)
    delta = params.get("delta", "auto")
    if delta == "auto":  # SPEC §6: pooled over both adapters and every module, q = delta_drop
        pooled = [o for name in BIG for side in ref.overlaps_dense(dense_delta(task, name), dense_delta(domain, name), lam)
                  for o in side]
        delta = ref.auto_delta_naive(pooled, params.get("delta_drop", 0.025))
        if not params.get("no_filter"):
            assert res.report["calibration"]["delta"] == pytest.approx(delta, rel=1e-9)
    dropped = 0
    for name in BIG:
        want, info = ref.tada_dense(dense_delta(task, name), dense_delta(domain, name), sd.means[name],
                                    sg.means[name], tau=taus[name], rank=RANK[name],
                                    beta=params.get("beta", 5.0), delta=delta, lam=lam,
                                    no_filter=params.get("no_filter", False), fixed_alpha=params.get("fixed_alpha"),
                                    layer_alpha=params.get("layer_alpha", False),
                                    filter_side=params.get("filter_side", "both"),
                                    keep_high_overlap=params.get("keep_high_overlap", False),
                                    random_filter=(params["seed"], name) if params.get("random_filter") else None)
        entry = res.report["modules"][name]
        assert entry["s"] == pytest.approx(info["s"], rel=1e-9)
        assert entry["alpha"] == pytest.approx(info["alpha"], rel=1e-9, abs=1e-15)
        assert rel(merged_delta(res.tensors, name), want) <= 1e-6, name
        assert entry["kept_task"] == info["kept_task"] and entry["kept_domain"] == info["kept_domain"], name
        dropped += len(entry["sigma_task"]) - len(entry["kept_task"])
    if not params.get("no_filter") and ("delta" in params or "delta_drop" in params):
        assert dropped > 0  # the shared direction is filtered
    elif not params.get("no_filter"):  # 29 components, q = 0.025: ⌊q·n⌋ = 0, nothing may be dropped
        assert dropped == 0 and res.report["calibration"]["max_dropped"] == 0
    if params.get("keep_high_overlap") or params.get("random_filter"):  # the ablation had something to change
        kept = sum(len(res.report["modules"][n]["kept_task"]) for n in BIG)
        total = sum(len(res.report["modules"][n]["sigma_task"]) for n in BIG)
        assert 0 < kept < total
