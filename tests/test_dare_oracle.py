"""DARE end to end (tada.merge on adapters on disk) against an independent float64 reference:
the drop masks are replicated from the documented per-module seeding (ModuleInput.seed_for:
sha256("seed:module:dare:side"), a float64 uniform per entry, kept when < density), rescaled by
1/density (SPEC §7), then linear / TIES election, then the exact rank-r truncation."""
from __future__ import annotations

import pytest

import tada

import reference as ref
from conftest import dense_delta, merged_delta, write_adapter

SHAPES = {"model.layers.0.self_attn.q_proj": (40, 32), "model.layers.1.self_attn.o_proj": (32, 40)}
RANK = 6  # max(r_T = 4, r_D = 6)


@pytest.fixture
def dare_pair(tmp_path):
    task = write_adapter(tmp_path / "task", SHAPES, r=4, alpha=8, seed=3)
    domain = write_adapter(tmp_path / "domain", SHAPES, r=6, alpha=12, seed=4, use_rslora=True)
    return task, domain


def rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def reference_dare(task, domain, name, *, method, density, seed, weights):
    dropped = [ref.dare_drop(dense_delta(folder, name), density, ref.seeded_generator(seed, name, f"dare:{side}"))
               for folder, side in ((task, "task"), (domain, "domain"))]
    if method == "dare_linear":
        merged = weights[0] * dropped[0] + weights[1] * dropped[1]
    else:
        merged = ref.ties_elect(dropped[0], dropped[1], weights)
    return ref.truncate(merged, RANK)


@pytest.mark.parametrize("method,weights", [("dare_linear", (0.5, 0.5)), ("dare_linear", (0.3, 1.2)),
                                            ("dare_ties", (1.0, 1.0)), ("dare_ties", (0.7, 1.3))])
@pytest.mark.parametrize("density,seed", [(0.5, 0), (0.3, 11)])
def test_dare_matches_independent_reference(dare_pair, method, weights, density, seed):
    task, domain = dare_pair
    res = tada.merge(task, domain, method=method, progress=False,
                     params={"density": density, "seed": seed, "weights": weights, "svd_solver": "exact",
                             "precision": "float64"})
    for name in SHAPES:
        want = reference_dare(task, domain, name, method=method, density=density, seed=seed, weights=weights)
        assert rel(merged_delta(res.tensors, name), want) <= 1e-6, name
        # and not merely close to what another draw would give
        other = reference_dare(task, domain, name, method=method, density=density, seed=seed + 1, weights=weights)
        assert rel(merged_delta(res.tensors, name), other) > 1e-2, name


def test_dare_default_params_are_the_float64_draw(dare_pair):
    """Defaults (auto solver/precision on small modules: exact, float64; seed 0; density 0.5;
    dare_linear weights 0.5/0.5) give the reference draw."""
    task, domain = dare_pair
    res = tada.merge(task, domain, method="dare_linear", progress=False)
    for name in SHAPES:
        want = reference_dare(task, domain, name, method="dare_linear", density=0.5, seed=0, weights=(0.5, 0.5))
        assert rel(merged_delta(res.tensors, name), want) <= 1e-6, name
