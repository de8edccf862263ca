"""One task adapter and K domain adapters (SPEC §6b): K = 1 is the two-adapter merge byte for byte,
K-way TaDA against a dense float64 oracle, Proposition 1 per adapter, K-way baselines against
their definitions and against mergekit / PEFT, and the CLI / YAML / API inputs."""
from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tada
from tada.adapters import load_adapter
from tada.errors import TadaError
from tada.methods import ModuleInput, get_method, make_params
from tada.methods.tada import auto_delta
from tada.methods.ties import ties_dense

import reference as ref
from conftest import dense_delta, merged_delta, random_stats, run_cli, write_adapter

#: Wide enough that Eq. 5 filters some components and keeps others (k-way overlaps are larger).
WIDE = {f"model.layers.{i}.self_attn.{m}": s for i in range(2) for m, s in
        (("q_proj", (96, 128)), ("v_proj", (64, 128)), ("o_proj", (128, 96)))}
K_METHODS = ("linear", "task_arithmetic", "cat", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune", "tada")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    root = tmp_path_factory.mktemp("kway")
    task = write_adapter(root / "task", WIDE, r=6, alpha=12, seed=30)
    doms = [write_adapter(root / f"d{i}", WIDE, r=5 + i, alpha=10, seed=31 + i) for i in range(3)]
    stats = [random_stats(WIDE, seed=40 + i) for i in range(3)]
    return task, doms, stats, random_stats(WIDE, seed=50)


def sha(tensors) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode() + tensors[k].contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("method", K_METHODS)
def test_one_domain_in_a_list_is_the_two_adapter_merge(three, method, tmp_path):
    task, doms, stats, g = three
    kw = {"domain_stats": stats[0], "general_stats": g} if method == "tada" else {}
    single = tada.merge(task, doms[0], method=method, progress=False, out=tmp_path / "a", **kw)
    listed = tada.merge(task, [doms[0]], method=method, progress=False, out=tmp_path / "b",
                        **({"domain_stats": [stats[0]], "general_stats": g} if method == "tada" else {}))
    assert sha(single.tensors) == sha(listed.tensors)
    for f in ("adapter_model.safetensors", "adapter_config.json", "tada_report.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


@pytest.mark.parametrize("combine", ["sum", "mean"])
@pytest.mark.parametrize("delta", [0.2, "auto"])
def test_kway_tada_matches_the_dense_oracle(three, combine, delta):
    task, doms, stats, g = three
    res = tada.merge(task, doms, domain_stats=stats, general_stats=g, progress=False,
                     params={"delta": delta, "domain_combine": combine})
    if delta == "auto":  # the oracle's δ: SPEC §6's pooled quantile over every adapter's overlaps
        pooled = [o for name in WIDE for row in ref.overlaps_dense_k(
            [dense_delta(task, name)] + [dense_delta(d, name) for d in doms]) for o in row]
        delta_value = ref.auto_delta_naive(pooled, 0.025)
        assert res.report["calibration"]["delta"] == pytest.approx(delta_value, abs=1e-9)
        assert res.report["calibration"]["pooled_overlaps"] == len(pooled)
    else:
        delta_value = delta
    dropped = 0
    for name in WIDE:
        tau = {"q_proj": 1.0, "v_proj": 1.2, "o_proj": 1.5}[name.rsplit(".", 1)[1]]
        want, info = ref.tada_dense_k(dense_delta(task, name), [dense_delta(d, name) for d in doms],
                                      [s.means[name] for s in stats], g.means[name], tau=tau,
                                      rank=max(6, *(5 + i for i in range(3))), delta=delta_value,
                                      domain_combine=combine)
        got = merged_delta(res.tensors, name)
        assert float((got - want).norm() / want.norm()) <= 1e-6, name
        entry = res.report["modules"][name]
        assert entry["kept_task"] == info["kept"][0]
        assert [entry[f"kept_{side}"] for side in ("domain", "domain2", "domain3")] == info["kept"][1:]
        assert list(entry["s_by_domain"].values()) == pytest.approx(info["s"], rel=1e-9)
        dropped += sum(len(row) - len(k) for row, k in zip(info["overlaps"], info["kept"]))
    if delta == 0.2:
        assert dropped > 0, "the oracle test must exercise the filter"


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 3), st.floats(-3, 3))
def test_proposition1_holds_for_every_adapter_separately(which, log_c):
    """Scaling any one input (task or domain k) by c > 0 leaves every s_k unchanged (SPEC §5, §6b)."""
    g = torch.Generator().manual_seed(7)
    shape, r = (40, 32), 4

    def lora():
        from tada.lowrank import LoraModule

        return LoraModule("m", torch.randn(r, shape[1], generator=g, dtype=torch.float64),
                          torch.randn(shape[0], r, generator=g, dtype=torch.float64), 1.0)

    mods = [lora() for _ in range(4)]
    hs = [torch.randn(shape[1], generator=g, dtype=torch.float64) for _ in range(4)]

    def s_values(scaled: int | None):
        ms = [m if i != scaled else type(m)(m.name, m.A, m.B * math.exp(log_c), m.scaling) for i, m in enumerate(mods)]
        module = ModuleInput("model.layers.0.self_attn.q_proj", ms[0], ms[1], r, hs[1], hs[0], tuple(ms[2:]),
                             tuple(hs[2:]))
        return get_method("tada").fn(module, make_params(get_method("tada"), {"delta": 0.9}, n_inputs=4)
                                     ).info["s_by_domain"]

    before, after = s_values(None), s_values(which)
    assert list(after.values()) == pytest.approx(list(before.values()), rel=1e-9)


def test_auto_delta_pools_every_adapter(three):
    task, doms, stats, g = three
    two = tada.merge(task, doms[:1], domain_stats=stats[:1], general_stats=g, progress=False)
    four = tada.merge(task, doms, domain_stats=stats, general_stats=g, progress=False)
    n_two, n_four = two.report["calibration"]["pooled_overlaps"], four.report["calibration"]["pooled_overlaps"]
    components = sum(len(four.report["modules"][n][f"sigma_{s}"]) for n in WIDE
                     for s in ("task", "domain", "domain2", "domain3"))
    assert n_four == components > n_two
    assert four.report["calibration"]["max_dropped"] == math.floor(0.025 * n_four)
    values = torch.tensor([o for n in WIDE for s in ("task", "domain", "domain2", "domain3")
                           for o in four.report["modules"][n][f"overlap_{s}"]], dtype=torch.float64)
    assert auto_delta(values, 0.025) == four.report["calibration"]["delta"]


@pytest.mark.parametrize("method", ["linear", "task_arithmetic", "cat"])
def test_exact_kway_baselines_are_the_weighted_sum(three, method):
    task, doms, _, _ = three
    weights = (0.4, 0.3, 0.2, 0.1)
    params = {"weights": weights} if method != "task_arithmetic" else {"scale": 0.7}
    w = weights if method != "task_arithmetic" else (0.7,) * 4
    res = tada.merge(task, doms, method=method, params=params, progress=False)
    for name in WIDE:
        want = sum(wi * dense_delta(a, name) for wi, a in zip(w, [task, *doms]))
        got = merged_delta(res.tensors, name)
        assert float((got - want).norm() / want.norm()) <= 1e-6
        assert res.report["modules"][name]["rank"] == 6 + 5 + 6 + 7


def test_kway_svd_is_the_truncated_weighted_sum(three):
    task, doms, _, _ = three
    res = tada.merge(task, doms, method="svd", progress=False)  # default weights: 1/4 each
    assert res.report["params"]["weights"] == [0.25] * 4
    for name in WIDE:
        want = ref.truncate(sum(0.25 * dense_delta(a, name) for a in [task, *doms]), 7)
        got = merged_delta(res.tensors, name)
        assert float((got - want).norm() / want.norm()) <= 1e-6  # written in float32


def test_default_weights_widen_and_wrong_counts_are_refused(three):
    task, doms, _, _ = three
    assert make_params(get_method("ties"), {}, n_inputs=4).weights == (1.0,) * 4
    assert make_params(get_method("linear"), {}, n_inputs=3).weights == pytest.approx((1 / 3,) * 3)
    with pytest.raises(TadaError, match=r"`weights` must be 4 numbers"):
        tada.merge(task, doms, method="linear", params={"weights": (0.5, 0.5)}, progress=False)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0), (0.6, 1.4, 0.8)])
@pytest.mark.parametrize("density", [0.3, 0.7])
def test_kway_ties_equals_mergekit_on_three_inputs(three, weights, density):
    from test_mergekit_golden import mergekit_ties

    task, doms, _, _ = three
    t, ds = load_adapter(task), [load_adapter(d) for d in doms[:2]]
    params = make_params(get_method("ties"), {"density": density, "weights": weights}, n_inputs=3)
    for name in WIDE:
        module = ModuleInput(name, t.module(name), ds[0].module(name), 6, more_domains=(ds[1].module(name),))
        ours = ties_dense(module, params)
        theirs = mergekit_ties([module.dense(s) for s in module.sides], list(weights), density)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_kway_cat_and_svd_equal_peft_on_three_adapters(tmp_path, tiny_base):
    import copy

    from peft import PeftModel

    from tada.models import load_model, resolve_base
    from conftest import llama_shapes

    model = load_model(resolve_base(str(tiny_base)))
    shapes = llama_shapes(model)
    adapters = [write_adapter(tmp_path / f"a{i}", shapes, r=4, alpha=4, seed=60 + i) for i in range(3)]
    for combination, weights, kw in (("cat", (0.5, 1.0, 0.25), {}), ("svd", (0.5, 0.3, 0.2), {"svd_rank": 4})):
        pm = PeftModel.from_pretrained(copy.deepcopy(model), str(adapters[0]), adapter_name="a0")
        for i in (1, 2):
            pm.load_adapter(str(adapters[i]), adapter_name=f"a{i}")
        pm.add_weighted_adapter(["a0", "a1", "a2"], list(weights), "merged", combination_type=combination, **kw)
        ours = tada.merge(adapters[0], adapters[1:], method=combination, params={"weights": weights}, progress=False)
        checked = 0
        for name, module in pm.base_model.model.named_modules():
            if hasattr(module, "lora_A") and "merged" in module.lora_A:
                theirs = module.get_delta_weight("merged").double()
                got = merged_delta(ours.tensors, name)
                assert float((got - theirs).norm() / theirs.norm()) <= 1e-5, (combination, name)
                checked += 1
        assert checked == len(shapes)


@pytest.mark.parametrize("method", K_METHODS)
def test_cli_kway_merge_loads_in_peft(tmp_path, tiny_base, capsys, method):
    from peft import PeftModel

    from tada.models import load_model, resolve_base
    from conftest import llama_shapes

    model = load_model(resolve_base(str(tiny_base)))
    shapes = llama_shapes(model)
    task = write_adapter(tmp_path / "t", shapes, r=4, alpha=8, seed=70)
    doms = [write_adapter(tmp_path / f"d{i}", shapes, r=4, alpha=8, seed=71 + i) for i in range(2)]
    stats = []
    for i in range(3):
        path = tmp_path / f"s{i}.stats.safetensors"
        random_stats(shapes, seed=80 + i).save(path)
        stats.append(path)
    args = ["merge", "--task", task, "--domain", doms[0], "--domain", doms[1], "--method", method,
            "--out", tmp_path / "m", "--quiet"]
    if method == "tada":
        args += ["--domain-stats", stats[0], "--domain-stats", stats[1], "--general-stats", stats[2]]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads((tmp_path / "m" / "tada_report.json").read_text())
    assert set(report["inputs"]["domains"]) == {"domain", "domain2"}
    pm = PeftModel.from_pretrained(model, str(tmp_path / "m"))
    x = torch.randint(0, 60, (1, 5))
    assert torch.isfinite(pm(x).logits).all()


def test_cli_domain_probes_must_pair_with_domains(tmp_path, capsys):
    task = write_adapter(tmp_path / "t", seed=1)
    doms = [write_adapter(tmp_path / f"d{i}", seed=2 + i) for i in range(2)]
    stats = tmp_path / "s.stats.safetensors"
    random_stats().save(stats)
    code, _, err = run_cli(capsys, "merge", "--task", task, "--domain", doms[0], "--domain", doms[1],
                           "--domain-stats", stats, "--general-stats", stats, "--out", tmp_path / "m")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--domain-stats" in lines[0] and "one per domain adapter" in lines[0]


def test_yaml_domains_list_with_weights(tmp_path, capsys):
    task = write_adapter(tmp_path / "t", seed=1)
    doms = [write_adapter(tmp_path / f"d{i}", seed=2 + i) for i in range(2)]
    (tmp_path / "m.yaml").write_text(f"task: t\nmethod: linear\nout: {tmp_path / 'out'}\ntask_weight: 0.5\n"
                                     "domains:\n  - {adapter: d0, weight: 0.3}\n  - {adapter: d1, weight: 0.2}\n")
    code, _, err = run_cli(capsys, "merge", "--config", tmp_path / "m.yaml", "--quiet")
    assert code == 0, err
    out = tmp_path / "out"
    report = json.loads((out / "tada_report.json").read_text())
    assert report["params"]["weights"] == [0.5, 0.3, 0.2]
    from safetensors.torch import load_file

    tensors = load_file(str(out / "adapter_model.safetensors"))
    name = "model.layers.0.self_attn.q_proj"
    want = sum(w * dense_delta(a, name) for w, a in zip((0.5, 0.3, 0.2), [task, *doms]))
    assert float((merged_delta(tensors, name) - want).norm() / want.norm()) <= 1e-6


def test_kway_report_shows_one_alpha_row_per_domain(three, tmp_path, capsys):
    from tada.analysis.plots import plot_alpha
    from tada.report.describe import describe
    from tada.report.summary import print_summary

    task, doms, stats, g = three
    res = tada.merge(task, doms, domain_stats=stats, general_stats=g, progress=False, out=tmp_path / "m")
    fig = plot_alpha([res.report], tmp_path / "a.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # each panel and table names its domain adapter by its folder (d0, d1, d2), not domain2 (#26)
    assert [t.split(", vs ")[1].split(" ")[0] for t in titles] == ["d0", "d1", "d2"]
    info = describe(tmp_path / "m")
    assert list(info["merge"]["alpha"]) == ["domain", "domain2", "domain3"]
    assert info["merge"]["alpha"]["domain2"][0] == pytest.approx(
        sum(res.report["modules"][n]["alpha_by_domain"]["domain2"] for n in WIDE if ".0." in n) / 3)
    print_summary(res)
    err = capsys.readouterr().err
    assert all(f"against {d}" in err for d in ("d0", "d1", "d2")) and "domain2" not in err
