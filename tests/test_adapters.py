"""Adapter I/O: scaling folded as PEFT does, refusals with reasons, atomic and deterministic output."""
from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file

import tada
from tada.adapters import load_adapter, write_adapter as write_out
from tada.errors import TadaError

from conftest import SHAPES, llama_shapes, write_adapter


def test_scaling_matches_peft(tmp_path, tiny_base):
    """c per module (alpha/r, rsLoRA alpha/√r, rank_pattern, alpha_pattern) equals PEFT's own scaling."""
    from peft import PeftModel

    from tada.models import load_model, resolve_base

    model = load_model(resolve_base(str(tiny_base)))
    folder = write_adapter(tmp_path / "a", llama_shapes(model), r=6, alpha=12, use_rslora=True,
                           rank_pattern={"v_proj": 3, "model.layers.1.self_attn.q_proj": 2},
                           alpha_pattern={"o_proj": 5})
    ours = load_adapter(folder)
    pm = PeftModel.from_pretrained(model, folder)
    checked = 0
    for name, module in pm.base_model.model.named_modules():
        if isinstance(getattr(module, "scaling", None), dict) and "default" in module.scaling:
            checked += 1
            assert ours.scaling(name) == pytest.approx(module.scaling["default"], rel=1e-12), name
            assert ours.module(name).rank == module.r["default"]
    assert checked == len(ours.module_names)
    assert ours.scaling("model.layers.0.self_attn.v_proj") == pytest.approx(12 / math.sqrt(3))
    assert ours.scaling("model.layers.1.self_attn.o_proj") == pytest.approx(5 / math.sqrt(6))


@pytest.mark.parametrize("extra,match", [
    ({"use_dora": True}, "DoRA"),
    ({"lora_bias": True}, "lora_bias"),
    ({"peft_type": "LOHA"}, "LOHA"),
    ({"peft_type": "IA3"}, "IA3"),
    ({"target_parameters": ["experts.gate_up_proj"]}, "target_parameters"),
])
def test_unsupported_adapters_refused(tmp_path, extra, match):
    folder = write_adapter(tmp_path / "a", extra_config=extra)
    with pytest.raises(TadaError, match=match):
        load_adapter(folder)


def test_pickle_refused_unless_allowed(tmp_path):
    folder = write_adapter(tmp_path / "a")
    from safetensors.torch import load_file

    torch.save(load_file(str(folder / "adapter_model.safetensors")), folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()
    with pytest.raises(TadaError, match="`allow_pickle`"):
        load_adapter(folder)
    pickled = load_adapter(folder, allow_pickle=True)
    assert pickled.module_names
    for name in pickled.module_names:  # the shapes from the pickle's tensors, as from a header
        m = pickled.module(name)
        assert pickled.factor_shape(name) == (*m.shape, m.rank)


@pytest.mark.parametrize("case", ["no_config", "bad_json", "truncated", "nan", "missing_B", "rank_mismatch",
                                  "odd_name", "symlink_out"])
def test_bad_files_give_one_clear_error(tmp_path, case):
    folder = write_adapter(tmp_path / "a")
    weights = folder / "adapter_model.safetensors"
    name = next(iter(SHAPES))
    if case == "no_config":
        (folder / "adapter_config.json").unlink()
    elif case == "bad_json":
        (folder / "adapter_config.json").write_text("{not json")
    elif case == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif case in ("nan", "missing_B", "rank_mismatch", "odd_name"):
        from safetensors.torch import load_file

        t = load_file(str(weights))
        if case == "nan":
            t[f"base_model.model.{name}.lora_A.weight"][0, 0] = float("nan")
        elif case == "missing_B":
            del t[f"base_model.model.{name}.lora_B.weight"]
        elif case == "rank_mismatch":
            t[f"base_model.model.{name}.lora_A.weight"] = torch.randn(3, 16)
            t[f"base_model.model.{name}.lora_B.weight"] = torch.randn(24, 3)
        else:
            t["base_model.model.weird.lora_X.weight"] = torch.zeros(1)
        save_file(t, str(weights))
    elif case == "symlink_out":
        outside = tmp_path / "outside.safetensors"
        weights.rename(outside)
        weights.symlink_to(outside)
    with pytest.raises(TadaError) as err:
        adapter = load_adapter(folder)
        list(adapter.modules())
    assert "\n" not in str(err.value)


def test_mismatched_inputs(tmp_path):
    task = write_adapter(tmp_path / "t")
    other = write_adapter(tmp_path / "o", {**SHAPES, "model.layers.2.self_attn.q_proj": (24, 16)}, seed=1)
    with pytest.raises(TadaError, match="different modules.*`allow_partial`"):
        tada.merge(task, other, method="linear", progress=False)
    res = tada.merge(task, other, method="linear", allow_partial=True, progress=False)
    entry = res.report["modules"]["model.layers.2.self_attn.q_proj"]
    assert "missing from the task adapter" in entry["notes"][0]
    assert "model.layers.2.self_attn.q_proj" in res.config["target_modules"]
    wrong = write_adapter(tmp_path / "w", {n: (s[0] * 2, s[1]) for n, s in SHAPES.items()}, seed=2)
    with pytest.raises(TadaError, match="different base models"):
        tada.merge(task, wrong, method="linear", progress=False)


def test_dtype_handling(tmp_path):
    t16 = write_adapter(tmp_path / "t", dtype=torch.bfloat16)
    d16 = write_adapter(tmp_path / "d", dtype=torch.bfloat16, seed=1)
    assert tada.merge(t16, d16, method="svd", progress=False).tensors[
        f"base_model.model.{next(iter(SHAPES))}.lora_A.weight"].dtype == torch.bfloat16
    d32 = write_adapter(tmp_path / "d32", seed=1)
    with pytest.warns(UserWarning, match="different dtypes"):
        res = tada.merge(t16, d32, method="svd", progress=False)
    assert next(iter(res.tensors.values())).dtype == torch.float32
    res = tada.merge(t16, d32, method="svd", dtype="float16", progress=False)
    assert next(iter(res.tensors.values())).dtype == torch.float16


def test_modules_to_save_carried_from_task(tmp_path):
    head = {"base_model.model.score.modules_to_save.default.weight": torch.ones(3, 16)}
    task = write_adapter(tmp_path / "t", extra_tensors=head, extra_config={"modules_to_save": ["score"]})
    domain = write_adapter(tmp_path / "d", seed=1)
    res = tada.merge(task, domain, method="cat", progress=False)
    assert torch.equal(res.tensors["base_model.model.score.modules_to_save.default.weight"], torch.ones(3, 16))
    assert res.config["modules_to_save"] == ["score"]
    assert res.report["modules_to_save"] == ["base_model.model.score.modules_to_save.default.weight"]


def test_output_is_atomic_and_never_clobbered(tmp_path, pair):
    task, domain = pair
    out = tmp_path / "out"
    tada.merge(task, domain, method="svd", out=out, progress=False)
    before = (out / "adapter_model.safetensors").read_bytes()
    with pytest.raises(TadaError, match="`force`"):
        tada.merge(task, domain, method="cat", out=out, progress=False)
    assert (out / "adapter_model.safetensors").read_bytes() == before
    tada.merge(task, domain, method="cat", out=out, force=True, progress=False)
    assert json.loads((out / "tada_report.json").read_text())["method"] == "cat"
    with pytest.raises(ValueError):  # a failure while writing leaves no temporary folder behind
        write_out(tmp_path / "x", {"a": torch.zeros(2)}, {"bad": float("nan")})
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["domain", "out", "task"]


@pytest.mark.parametrize("method", ["tada", "dare_ties", "ties", "cat"])
def test_two_runs_are_byte_identical(tmp_path, pair, method):
    from conftest import random_stats

    task, domain = pair
    for out in ("a", "b"):
        tada.merge(task, domain, method=method, domain_stats=random_stats(seed=1),
                   general_stats=random_stats(seed=2), out=tmp_path / out, progress=False)
    for f in ("adapter_model.safetensors", "adapter_config.json", "tada_report.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


@pytest.mark.parametrize("method", ["tada", "ties"])
def test_another_thread_count_changes_at_most_rounding(pair, method):
    """docs/reliability.md: with another torch thread count LAPACK/BLAS may split their work, and so
    round, differently (the bytes may differ); the merged ΔW must still agree to float32 rounding."""
    from conftest import merged_delta, random_stats

    task, domain = pair
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs.append(tada.merge(task, domain, method=method, domain_stats=random_stats(seed=1),
                                   general_stats=random_stats(seed=2), progress=False).tensors)
    finally:
        torch.set_num_threads(before)
    names = [k.removeprefix("base_model.model.").removesuffix(".lora_A.weight") for k in runs[0] if "lora_A" in k]
    assert names
    for name in names:
        one, two = (merged_delta(r, name) for r in runs)
        assert float((one - two).norm()) <= 1e-5 * float(one.norm()), name


def test_dare_seed_changes_result(pair):
    task, domain = pair
    a = tada.merge(task, domain, method="dare_linear", params={"seed": 0}, progress=False)
    b = tada.merge(task, domain, method="dare_linear", params={"seed": 1}, progress=False)
    key = next(iter(a.tensors))
    assert not torch.equal(a.tensors[key], b.tensors[key])


def test_rank_deficient_adapters_merge_exactly(tmp_path):
    """B·A of rank 2 stored at r=6 (repeated rows/columns): components beyond rank 2 are dropped
    as numerically zero and every method still returns the exact dense answer (float64 oracle)."""
    from safetensors.torch import load_file

    import reference as ref
    from conftest import dense_delta, merged_delta, random_stats

    task = write_adapter(tmp_path / "t", r=6, alpha=6, seed=0)
    domain = write_adapter(tmp_path / "d", r=6, alpha=6, seed=1)
    weights = domain / "adapter_model.safetensors"
    t = load_file(str(weights))
    for key in t:
        if key.endswith("lora_A.weight"):
            t[key][2:] = t[key][:2].repeat(2, 1)  # only two independent rows
    save_file(t, str(weights))
    sd, sg = random_stats(seed=1), random_stats(seed=2)
    taus = {"q_proj": 1.0, "k_proj": 1.0, "v_proj": 1.2, "o_proj": 1.5}  # SPEC §5
    params = {"cat": {"weights": (1.0, 1.0)}, "svd": {"weights": (0.5, 0.5)}, "tada": {"delta": 0.1}}
    for method in ("cat", "svd", "tada"):
        res = tada.merge(task, domain, method=method, params=params[method], domain_stats=sd,
                         general_stats=sg, progress=False)
        for name in SHAPES:
            WT, WD = dense_delta(task, name), dense_delta(domain, name)
            assert torch.linalg.matrix_rank(WD) == 2
            if method == "cat":
                want = WT + WD
            elif method == "svd":
                want = ref.truncate(0.5 * WT + 0.5 * WD, 6)
            else:
                want, info = ref.tada_dense(WT, WD, sd.means[name], sg.means[name],
                                            tau=taus[name.rsplit(".", 1)[-1]], rank=6, delta=0.1)
                entry = res.report["modules"][name]
                assert len(entry["sigma_domain"]) == 2
                assert entry["kept_task"] == info["kept_task"] and entry["kept_domain"] == info["kept_domain"]
            got = merged_delta(res.tensors, name)
            assert float((got - want).norm() / want.norm()) <= 1e-6, (method, name)


def test_revision_recorded_in_report(tmp_path, pair):
    task, domain = pair
    res = tada.merge(task, domain, method="cat", task_revision="abc123", progress=False)
    assert res.report["inputs"]["task"]["revision"] == "abc123"
    assert res.report["inputs"]["domain"]["revision"] is None


def test_probe_base_and_name_mismatches(tmp_path, pair, tiny_base):
    import torch as _torch

    from conftest import random_stats
    from tada.models import load_model, resolve_base
    from tada.probes import ProbeStats, find_modules

    task, domain = pair
    wrong = ProbeStats({n: _torch.zeros(v.numel() + 1, dtype=_torch.float64)
                        for n, v in random_stats().means.items()}, {})
    with pytest.raises(TadaError, match="probes and adapters are for different base models"):
        tada.merge(task, domain, method="tada", domain_stats=wrong, general_stats=wrong, progress=False)
    with pytest.raises(TadaError, match="was the adapter trained on this base"):
        find_modules(load_model(resolve_base(str(tiny_base))), ["model.layers.7.self_attn.q_proj"])
    other = write_adapter(tmp_path / "other", seed=3, base="another-base")
    with pytest.warns(UserWarning, match="different base models"):
        tada.merge(task, other, method="cat", progress=False)


def test_target_modules_order_does_not_matter(tmp_path):
    task = write_adapter(tmp_path / "t", extra_config={"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]})
    domain = write_adapter(tmp_path / "d", seed=1, extra_config={"target_modules": ["v_proj", "q_proj", "o_proj", "k_proj"]})
    res = tada.merge(task, domain, method="cat", progress=False)
    assert res.config["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
