"""The role table (src/tada/roles.py) on the real module paths of GPT-2, Falcon, GPT-NeoX, Phi-3,
Phi (phi-1/2) and T5, taken from tiny models built on the meta device from their transformers
configs: τ per SPEC §5 (query/key 1.0, value 1.2, attention output 1.5, fused QKV one module
with 1.0, MLP and unknown 1.0)."""
from __future__ import annotations

import pytest
import torch

from tada.roles import TauTable, role_of
from tada.errors import TadaError  # noqa: E402
from conftest import random_stats, run_cli, tada_merge  # noqa: E402

Q, K, V, O, QKV, MLP, OTHER = "query", "key", "value", "attn_out", "qkv", "mlp", "other"
TAU = {Q: 1.0, K: 1.0, V: 1.2, O: 1.5, QKV: 1.0, MLP: 1.0, OTHER: 1.0}  # SPEC §5, written out

EXPECTED = {
    "gpt2": {"transformer.h.0.attn.c_attn": QKV, "transformer.h.0.attn.c_proj": O,
             "transformer.h.0.mlp.c_fc": MLP, "transformer.h.0.mlp.c_proj": MLP, "lm_head": OTHER},
    "falcon": {"transformer.h.0.self_attention.query_key_value": QKV, "transformer.h.0.self_attention.dense": O,
               "transformer.h.0.mlp.dense_h_to_4h": MLP, "transformer.h.0.mlp.dense_4h_to_h": MLP, "lm_head": OTHER},
    "gpt_neox": {"gpt_neox.layers.0.attention.query_key_value": QKV, "gpt_neox.layers.0.attention.dense": O,
                 "gpt_neox.layers.0.mlp.dense_h_to_4h": MLP, "gpt_neox.layers.0.mlp.dense_4h_to_h": MLP,
                 "lm_head": OTHER},
    "phi3": {"model.layers.0.self_attn.qkv_proj": QKV, "model.layers.0.self_attn.o_proj": O,
             "model.layers.0.mlp.gate_up_proj": MLP, "model.layers.0.mlp.down_proj": MLP, "lm_head": OTHER},
    "phi": {"model.layers.0.self_attn.q_proj": Q, "model.layers.0.self_attn.k_proj": K,
            "model.layers.0.self_attn.v_proj": V, "model.layers.0.self_attn.dense": O,
            "model.layers.0.mlp.fc1": MLP, "model.layers.0.mlp.fc2": MLP, "lm_head": OTHER},
    "t5": {**{f"{stack}.block.0.layer.0.SelfAttention.{m}": r for stack in ("encoder", "decoder")
              for m, r in (("q", Q), ("k", K), ("v", V), ("o", O))},
           **{f"decoder.block.0.layer.1.EncDecAttention.{m}": r for m, r in (("q", Q), ("k", K), ("v", V), ("o", O))},
           # T5's feed-forward (wi/wo): not attention, τ = 1.0 whichever of mlp/other it lands in
           "encoder.block.0.layer.1.DenseReluDense.wi": MLP, "encoder.block.0.layer.1.DenseReluDense.wo": MLP,
           "decoder.block.0.layer.2.DenseReluDense.wi": MLP, "decoder.block.0.layer.2.DenseReluDense.wo": MLP},
}


def tiny_model(arch: str):
    import transformers as tf

    configs = {
        "gpt2": lambda: tf.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8,
                                      bos_token_id=0, eos_token_id=0),
        "falcon": lambda: tf.FalconConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, vocab_size=16,
                                          bos_token_id=0, eos_token_id=0),
        "gpt_neox": lambda: tf.GPTNeoXConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2,
                                             intermediate_size=16, vocab_size=16, bos_token_id=0, eos_token_id=0),
        "phi3": lambda: tf.Phi3Config(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, num_key_value_heads=2,
                                      intermediate_size=16, vocab_size=16, pad_token_id=0, bos_token_id=0,
                                      eos_token_id=0),
        "phi": lambda: tf.PhiConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, intermediate_size=16,
                                    vocab_size=16, bos_token_id=0, eos_token_id=0),
        "t5": lambda: tf.T5Config(num_layers=1, num_decoder_layers=1, d_model=8, d_ff=16, d_kv=4, num_heads=2,
                                  vocab_size=16),
    }
    cfg = configs[arch]()
    with torch.device("meta"):
        return (tf.AutoModel if arch == "t5" else tf.AutoModelForCausalLM).from_config(cfg)


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_roles_and_tau_on_real_module_paths(arch):
    from transformers.pytorch_utils import Conv1D

    model = tiny_model(arch)
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, Conv1D))]
    assert sorted(names) == sorted(EXPECTED[arch])  # the literal paths above are the real ones
    table = TauTable()
    wrong = {}
    for name in names:
        want = EXPECTED[arch][name]
        got = role_of(name)
        tau = table.tau(name)
        if want == MLP:
            ok = got in (MLP, OTHER) and tau == 1.0  # SPEC: MLP and unknown both τ = 1.0
        else:
            ok = got == want and tau == TAU[want]
        if not ok:
            wrong[name] = (got, tau, want, TAU[want])
        # PEFT's key prefix does not change the role
        assert role_of(f"base_model.model.{name}") == got
    assert not wrong, wrong


def test_a_tau_typo_is_an_error_with_a_suggestion(adapters):
    with pytest.raises(TadaError, match=r"'atn_out' matches no module.*did you mean attn_out"):
        tada_merge(adapters, tau={"atn_out": 1.5})


def test_a_tau_role_no_module_has_is_an_error(adapters):
    with pytest.raises(TadaError, match=r"'mlp': no module here has that role"):
        tada_merge(adapters, tau={"mlp": 1.5})


def test_valid_tau_overrides_apply(adapters):
    res = tada_merge(adapters, tau={"attn_out": 1.7, r"layers\.1\.": 0.9})
    assert res.report["modules"]["model.layers.0.self_attn.o_proj"]["tau"] == 1.7
    assert res.report["modules"]["model.layers.1.self_attn.q_proj"]["tau"] == 0.9


def test_a_bad_tau_regex_is_one_line(adapters):
    with pytest.raises(TadaError, match="not a valid regular expression"):
        tada_merge(adapters, tau={"layers.(": 1.0})


def test_cli_tau_typo_exits_2_with_one_line(adapters, tmp_path, capsys):
    task, domain = adapters
    stats = tmp_path / "s.stats.safetensors"
    random_stats().save(stats)
    code, _, err = run_cli(capsys, "merge", "--task", task, "--domain", domain, "--domain-stats", stats,
                           "--general-stats", stats, "--tau", "atn_out=1.5", "--out", tmp_path / "m")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--tau" in lines[0] and "did you mean attn_out" in lines[0], err
    assert not (tmp_path / "m").exists()
