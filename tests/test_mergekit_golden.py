"""Golden test: our TIES before truncation equals mergekit's ``ties`` entry for entry (SPEC §7).

mergekit 0.1.5 (LGPL, test extra only): ``sparsify(..., method="magnitude")`` per delta, weights
applied, ``get_mask(weighted, "sum")``, mixed = Σ w·δ·mask / Σ w·mask (``normalize=True``).
"""
from __future__ import annotations

import pytest
import torch
from mergekit.merge_methods.generalized_task_arithmetic import get_mask
from mergekit.sparsify import SparsificationMethod, sparsify

from tada.adapters import load_adapter
from tada.methods import ModuleInput, get_method, make_params
from tada.methods.ties import ties_dense

from conftest import SHAPES


def mergekit_ties(deltas: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    sparse = torch.stack([sparsify(d, density=density, method=SparsificationMethod.magnitude) for d in deltas])
    w = torch.tensor(weights, dtype=sparse.dtype).view(-1, 1, 1)
    weighted = sparse * w
    mask = get_mask(weighted, method="sum", mask_dtype=sparse.dtype)
    divisor = (w * mask).sum(dim=0)
    divisor[divisor == 0] = 1
    return (weighted * mask).sum(dim=0) / divisor


@pytest.mark.parametrize("density", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.6, 1.4)])
def test_ties_equals_mergekit(pair, density, weights):
    task, domain = pair
    t, d = load_adapter(task), load_adapter(domain)
    params = make_params(get_method("ties"), {"density": density, "weights": weights})
    for name in SHAPES:
        module = ModuleInput(name, t.module(name), d.module(name), 6)
        ours = ties_dense(module, params)
        theirs = mergekit_ties([module.dense("task"), module.dense("domain")], list(weights), density)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
