"""KnOTS and Core Space (``tada.methods.knots_core``): dense float64 oracles written from the papers'
equations, properties (Core Space lossless, KnOTS-TA = task arithmetic), golden outputs of the
authors' own code (recorded by tests/golden/subspace/record_knots_core.py), the pinned
differences from the authors' code, and one end-to-end merge.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tada
from tada.errors import TadaError
from tada.lowrank import LoraModule
from tada.methods import get_method, make_params
from tada.methods import knots_core as sub
from tada.methods.base import ModuleInput
from tada.methods.sparsify import magnitude_trim

import reference as ref
from conftest import dense_delta, merged_delta

GOLDEN = Path(__file__).parent / "golden" / "subspace"
D_OUT, D_IN = 12, 10
#: (ranks, scalings) of task, domain[, domain2]: unequal ranks and scalings (rsLoRA-like c's)
SETS = {1: ((3, 5), (2.0, 12 / 5 ** 0.5)), 2: ((2, 3, 4), (0.5, 2.0, 1.25))}
ZERO = 1e-9


def modules(k: int, seed: int = 0, d_out: int = D_OUT, d_in: int = D_IN) -> ModuleInput:
    ranks, scalings = SETS[k]
    g = torch.Generator().manual_seed(seed)
    mods = [LoraModule("m", torch.randn(r, d_in, generator=g), torch.randn(d_out, r, generator=g), c)
            for r, c in zip(ranks, scalings)]
    return ModuleInput("m", mods[0], mods[1], 4, more_domains=tuple(mods[2:]))


def deltas(mi: ModuleInput) -> list[torch.Tensor]:
    """c_i B_i A_i in float64, straight from the raw factors."""
    return [m.scaling * m.B.double() @ m.A.double() for m in mi.inputs]


def run(method: str, mi: ModuleInput, **params) -> torch.Tensor:
    spec = get_method(method)
    res = spec.fn(mi, make_params(spec, params, len(mi.inputs)))
    return res.B @ res.A


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# --- oracles: dense, from the equations ----------------------------------------------------------

def oracle_knots(mi: ModuleInput, rule: str, density: float = 0.2, scale: float = 1.0, seed: int = 0):
    """KnOTS' dense oracle (tests/reference.py) on this module's c_i B_i A_i."""
    return ref.knots_dense(deltas(mi), rule, density, scale, dare_generator(mi, rule, seed))


def oracle_core(mi: ModuleInput, rule: str, density: float = 0.3, scale: float = 1.0, seed: int = 0):
    """Core Space's dense oracle (tests/reference.py) on this module's factors."""
    return ref.core_space_dense([m.scaling * m.B.double() for m in mi.inputs], [m.A.double() for m in mi.inputs],
                                rule, density, scale, dare_generator(mi, rule, seed))


def dare_generator(mi: ModuleInput, rule: str, seed: int):
    """The authors' draws come from tada's per-module generator (seed, module, "subspace-dare")."""
    return ref.seeded_generator(seed, mi.name, "subspace-dare") if rule == "dare_ties" else None


oracle_trim = ref.authors_trim_dense


# --- (a) oracles -----------------------------------------------------------------------------------

RULE_PARAMS = [("ta", {"scale": 0.8}), ("ties", {"density": 0.2, "scale": 0.6}), ("ties", {"density": 0.7}),
               ("dare_ties", {"density": 0.6, "scale": 0.7, "seed": 3}), ("tsv", {"scale": 0.5}), ("iso_c", {})]


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("rule,params", RULE_PARAMS)
def test_knots_matches_dense_oracle(k, rule, params):
    mi = modules(k, seed=k)
    want = oracle_knots(mi, rule, **params)
    assert rel(run("knots", mi, rule=rule, **params), want) <= 1e-6


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("rule,params", RULE_PARAMS)
def test_core_space_matches_dense_oracle(k, rule, params):
    mi = modules(k, seed=10 + k)
    want = oracle_core(mi, rule, **params)
    assert rel(run("core_space", mi, rule=rule, **params), want) <= 1e-6


def test_wide_rank_sum_above_d_in():
    """Σr > d_in (ranks 2+3+4 = 9 > d_in 6): the bases have min(d, Σr) columns."""
    mi = modules(2, seed=5, d_out=12, d_in=6)
    assert rel(run("core_space", mi, rule="ties"), oracle_core(mi, "ties")) <= 1e-6
    assert rel(run("knots", mi, rule="ties"), oracle_knots(mi, "ties")) <= 1e-6


# --- (b) properties --------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2])
def test_core_space_ta_is_lossless(k):
    mi = modules(k, seed=20 + k)
    total = sum(deltas(mi))
    assert rel(run("core_space", mi, rule="ta", scale=1.0), total) <= 1e-12


@pytest.mark.parametrize("k", [1, 2])
def test_knots_ta_is_task_arithmetic(k):
    mi = modules(k, seed=30 + k)
    assert rel(run("knots", mi, rule="ta", scale=0.7), run("task_arithmetic", mi, scale=0.7)) <= 1e-12


def test_missing_side_counts_as_zero():
    full = modules(2, seed=40)
    mi = ModuleInput("m", full.task, None, 4, more_domains=full.more_domains)
    kept = [full.task, full.more_domains[0]]
    total = sum(m.scaling * m.B.double() @ m.A.double() for m in kept)
    assert rel(run("core_space", mi, rule="ta"), total) <= 1e-12
    assert rel(run("knots", mi, rule="ta"), total) <= 1e-12
    # TIES on the (all-zero) missing block: it never agrees, so it never counts in the mean
    two = ModuleInput("m", full.task, full.more_domains[0], 4)
    assert rel(run("knots", mi, rule="ties", density=0.5), run("knots", two, rule="ties", density=0.5)) <= 1e-9


def test_output_rank_is_natural_not_truncated():
    mi = modules(2, seed=50)
    spec = get_method("knots")
    res = spec.fn(mi, make_params(spec, {"rule": "ta"}, 3))
    assert res.B.shape[1] == 9 > mi.rank and res.info["rank"] == 9
    spec = get_method("core_space")
    res = spec.fn(mi, make_params(spec, {"rule": "tsv"}, 3))
    # tsv: int(9/3) = 3 components per core, the rank-2 task has only 2 → rank 8
    assert res.A.shape[0] == 8


def test_params_choices_and_bounds_are_declared():
    with pytest.raises(TadaError, match="rule must be one of"):
        make_params(get_method("knots"), {"rule": "dare"})
    assert make_params(get_method("knots"), {}).rule == "ties" and make_params(get_method("core_space"), {}).rule == "tsv"
    with pytest.raises(TadaError, match="density must be"):
        make_params(get_method("core_space"), {"density": 0.0})
    assert get_method("knots").row == 9 and get_method("core_space").row == 10  # in the default bench grid
    assert not get_method("knots").exact and not get_method("core_space").exact


# --- (c) golden: the authors' own code -------------------------------------------------------------

def _golden():
    meta = json.loads((GOLDEN / "knots_core.json").read_text())
    return meta, np.load(GOLDEN / "knots_core.npz")


@pytest.mark.parametrize("case", [c["case"] for c in _golden()[0]["cases"]])
def test_golden_against_authors_code(case):
    """tada vs the authors' SVDMerger (KnOTS) / MatrixPerLayerMerger (Core Space) on one module.

    Agreement is ~1e-8, not 1e-15: the authors keep λ (``scaling_coeffs``) as a float32 tensor
    (0.6 → 0.60000002), a relative 4e-8 on the result; λ = 1 cases agree to 1e-15."""
    meta, z = _golden()
    c = next(c for c in meta["cases"] if c["case"] == case)
    n = len(meta["inputs"][c["inputs"]]["ranks"])
    mods = [LoraModule("layer", torch.from_numpy(z[f"{c['inputs']}/A{i}"]), torch.from_numpy(z[f"{c['inputs']}/B{i}"]),
                       float(z[f"{c['inputs']}/scaling{i}"])) for i in range(n)]
    mi = ModuleInput("layer", mods[0], mods[1], 4, more_domains=tuple(mods[2:]))
    params = dict(c["params"])
    dare_seed = params.pop("dare_seed", None)
    spec = get_method(c["method"])
    p = make_params(spec, params, n)
    if dare_seed is not None:
        # the authors' draws: torch.manual_seed(dare_seed), then per adapter in order
        U, blocks = sub.knots_components(mi)
        got = U @ sub.subspace_rule(blocks, "dare_ties", p.density, p.scale, torch.Generator().manual_seed(dare_seed))
    else:
        res = spec.fn(mi, p)
        got = res.B @ res.A
    want = torch.from_numpy(z[f"{case}/delta"])
    assert rel(got, want) <= 1e-6


# --- pinned differences --------------------------------------------------------------------------

def test_trim_keeps_one_more_than_magnitude_trim():
    """The authors' TIES trim keeps int(n·density)+1 entries (|x| ≥ the (n−int(n·d))-th smallest);
    tada's entry-wise ``magnitude_trim`` (mergekit) keeps int(n·density). KnOTS and Core Space
    follow the authors."""
    x = torch.randn(9, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert int((sub.authors_trim(x, 0.2) != 0).sum()) == 19
    assert int((magnitude_trim(x, 0.2) != 0).sum()) == 18


def test_zero_threshold_is_relative():
    """Components are dropped below 1e-9·σ₁ (tada's rule); the authors drop σ ≤ 1e-5 absolute,
    so their result is not scale-equivariant for adapters with tiny updates. Ours is."""
    mi = modules(1, seed=60)
    tiny = ModuleInput("m", *[LoraModule("m", m.A, m.B, m.scaling * 1e-7) for m in mi.inputs], 4)
    for method, rule in (("knots", "ties"), ("core_space", "tsv")):
        assert rel(run(method, tiny, rule=rule) * 1e7, run(method, mi, rule=rule)) <= 1e-9


def test_tsv_rank_deficient_core_is_deterministic():
    """An adapter of rank r_i < int(Σr/n) (ranks 2, 3, 4: int(9/3) = 3): its missing triplet is a
    zero column here (the authors' code takes SVD-arbitrary null vectors). The result does not
    depend on the basis of the null space: a rotation of the inputs' factors gives the same ΔW."""
    mi = modules(2, seed=70)
    Q = torch.linalg.qr(torch.randn(2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    t = mi.task
    rotated = ModuleInput("m", LoraModule("m", (Q.T @ t.A.double()), t.B.double() @ Q, t.scaling), mi.domain, 4,
                          more_domains=mi.more_domains)
    assert rel(run("core_space", rotated, rule="tsv"), run("core_space", mi, rule="tsv")) <= 1e-9
    assert rel(run("core_space", mi, rule="tsv"), oracle_core(mi, "tsv")) <= 1e-9


# --- end to end --------------------------------------------------------------------------------

def file_module(folder: Path, name: str) -> LoraModule:
    """Raw A, B of one module and its scaling c, read straight from the PEFT files (c = dense_delta's)."""
    from safetensors.torch import load_file

    t = load_file(str(folder / "adapter_model.safetensors"))
    A = t[f"base_model.model.{name}.lora_A.weight"].double()
    B = t[f"base_model.model.{name}.lora_B.weight"].double()
    c = float(dense_delta(folder, name).norm() / (B @ A).norm())
    return LoraModule(name, A, B, c)


@pytest.mark.parametrize("method,rule", [("knots", "ties"), ("core_space", "ties"), ("knots", "dare_ties")])
def test_merge_end_to_end(pair, tmp_path, method, rule):
    """tada.merge on two PEFT adapters (r 4 vs rsLoRA r 6 / rank_pattern / alpha_pattern) writes
    an adapter whose every module's ΔW = B·A equals the dense oracle."""
    from safetensors.torch import load_file

    task, domain = pair
    out = tmp_path / "merged"
    tada.merge(task, domain, method=method, params={"rule": rule, "density": 0.5}, out=out, progress=False)
    tensors = load_file(str(out / "adapter_model.safetensors"))
    from conftest import SHAPES

    for name in SHAPES:
        mi = ModuleInput(name, file_module(task, name), file_module(domain, name), 4)
        want = oracle_knots(mi, rule, density=0.5) if method == "knots" else oracle_core(mi, rule, density=0.5)
        assert rel(merged_delta(tensors, name), want) <= 1e-6, name
