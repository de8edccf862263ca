"""Golden tests against PEFT's add_weighted_adapter where it computes the same thing (SPEC §7),
and regression guards for the PEFT defects we must not share."""
from __future__ import annotations

import copy

import pytest
import torch

import tada
from tada.models import load_model, resolve_base

from conftest import dense_delta, llama_shapes, merged_delta, write_adapter


@pytest.fixture(scope="module")
def base_model(tiny_base):
    return load_model(resolve_base(str(tiny_base)))


def peft_merge(model, task, domain, combination, weights, **kw):
    """PEFT's add_weighted_adapter on the two adapters; returns {module: ΔW (float64)}."""
    from peft import PeftModel

    pm = PeftModel.from_pretrained(copy.deepcopy(model), task, adapter_name="task")
    pm.load_adapter(domain, adapter_name="domain")
    pm.add_weighted_adapter(["task", "domain"], list(weights), "merged", combination_type=combination, **kw)
    out, factors = {}, {}
    for name, module in pm.base_model.model.named_modules():
        if hasattr(module, "lora_A") and "merged" in module.lora_A:
            out[name] = module.get_delta_weight("merged").double()
            factors[name] = (module.lora_A["merged"].weight.detach(), module.lora_B["merged"].weight.detach())
    peft_merge.factors = factors
    return out


def rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.3, 0.9)])
def test_cat_equals_peft_cat(tmp_path, base_model, weights):
    shapes = llama_shapes(base_model)
    task = write_adapter(tmp_path / "t", shapes, r=4, alpha=8, seed=0)
    domain = write_adapter(tmp_path / "d", shapes, r=6, alpha=6, seed=1, use_rslora=True)
    ours = tada.merge(task, domain, method="cat", params={"weights": weights}, progress=False)
    theirs = peft_merge(base_model, task, domain, "cat", weights)
    for name in shapes:
        assert rel(merged_delta(ours.tensors, name), theirs[name]) <= 1e-6
        # the same factor layout too: B = [B_T, B_D], A = [w c A_T; w c A_D]
        A, B = peft_merge.factors[name]
        torch.testing.assert_close(ours.tensors[f"base_model.model.{name}.lora_A.weight"], A, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(ours.tensors[f"base_model.model.{name}.lora_B.weight"], B, rtol=0, atol=0)


def test_svd_equals_peft_svd_when_alpha_equals_r(tmp_path, base_model):
    shapes = llama_shapes(base_model)
    task = write_adapter(tmp_path / "t", shapes, r=4, alpha=4, seed=0)
    domain = write_adapter(tmp_path / "d", shapes, r=4, alpha=4, seed=1)
    ours = tada.merge(task, domain, method="svd", params={"weights": (0.5, 0.5)}, progress=False)
    theirs = peft_merge(base_model, task, domain, "svd", (0.5, 0.5), svd_rank=4)
    for name in shapes:
        assert rel(merged_delta(ours.tensors, name), theirs[name]) <= 1e-5  # PEFT works in float32


def test_linear_is_exact_where_peft_linear_adds_cross_terms(tmp_path, base_model):
    """PEFT's linear combines A and B separately: Σ√w A, Σ√w B ⇒ cross terms B_T A_D. Ours is exact."""
    shapes = llama_shapes(base_model)
    task = write_adapter(tmp_path / "t", shapes, r=4, alpha=4, seed=0)
    domain = write_adapter(tmp_path / "d", shapes, r=4, alpha=4, seed=1)
    ours = tada.merge(task, domain, method="linear", params={"weights": (0.5, 0.5)}, progress=False)
    theirs = peft_merge(base_model, task, domain, "linear", (0.5, 0.5))
    for name in shapes:
        exact = 0.5 * dense_delta(task, name) + 0.5 * dense_delta(domain, name)
        assert rel(merged_delta(ours.tensors, name), exact) <= 1e-6
        assert rel(theirs[name], exact) > 0.1  # PEFT's factor-wise linear is not the weighted sum


def test_peft_silently_ignores_existing_name_we_refuse(tmp_path, pair):
    task, domain = pair
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(tada.TadaError, match="exists"):
        tada.merge(task, domain, method="linear", out=out, progress=False)
