"""Issue #27's done-when, on the shipped example adapters: ``tada merge --method M`` for every
subspace method writes a PEFT adapter that ``PeftModel.from_pretrained`` loads, and the ΔW that
PEFT applies (``get_delta_weight``: B·A·alpha/r from our files and config) is the dense float64
oracle of tests/reference.py, written from the papers' equations."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import dense_delta, run_cli, tiny_llama_config
from reference import SUBSPACE, subspace_answer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "adapters"
TASK, DOMAIN = EXAMPLES / "task-format", EXAMPLES / "domain"
#: Modules compared with the oracle (first and last layer, every projection); PEFT loads all 120.
CHECKED = [f"model.layers.{i}.self_attn.{p}_proj" for i in (0, 29) for p in "qkvo"]


@pytest.fixture(scope="module")
def smollm2_shaped():
    """A LlamaForCausalLM with SmolLM2-135M's attention shapes (30 layers, hidden 576, 9 heads,
    3 key/value heads), random weights and a small vocabulary and MLP: PEFT checks every adapter
    tensor's shape against it; the base weights do not enter ΔW."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    config = tiny_llama_config(hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                               num_key_value_heads=3, intermediate_size=16)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("method", SUBSPACE)
def test_shipped_pair_merges_into_a_peft_adapter_equal_to_the_oracle(tmp_path, capsys, smollm2_shaped, method):
    from peft import PeftModel

    out = tmp_path / method
    code, _, err = run_cli(capsys, "merge", "--task", TASK, "--domain", DOMAIN, "--method", method,
                           "--out", out, "--quiet")
    assert code == 0, err
    model = PeftModel.from_pretrained(smollm2_shaped, str(out))
    try:
        layers = dict(model.base_model.model.named_modules())
        assert sum(1 for n in layers if n.endswith("_proj") and hasattr(layers[n], "lora_A")) == 120
        for name in CHECKED:
            got = layers[name].get_delta_weight("default").double()
            want = subspace_answer(method, TASK, DOMAIN, name, dense_delta(TASK, name), dense_delta(DOMAIN, name))
            assert float((got - want).norm() / want.norm()) <= 1e-6, name
    finally:
        model.unload()  # the shared base model without LoRA layers for the next method
