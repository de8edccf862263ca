"""Base-model loading helpers: the warning for half precision a CPU only emulates."""
from __future__ import annotations

import warnings

import pytest
import torch

from tada import models
from tada.errors import TadaError  # noqa: E402


@pytest.fixture
def cpu_without_half(monkeypatch):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported", "_is_amx_fp16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    monkeypatch.setattr(models, "_WARNED_DTYPES", set())


def test_emulated_bfloat16_warns_once_with_the_fix(cpu_without_half):
    with pytest.warns(UserWarning, match="no native bfloat16.*`model_dtype` float32"):
        models.warn_if_slow_on_cpu(torch.bfloat16, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.warn_if_slow_on_cpu(torch.bfloat16, "cpu")  # once per process
        models.warn_if_slow_on_cpu(torch.float32, "cpu")
        models.warn_if_slow_on_cpu(None, "cpu")
        models.warn_if_slow_on_cpu(torch.float16, "cuda")  # GPUs compute half natively
    with pytest.warns(UserWarning, match="no native float16.*without `autocast`"):
        models.warn_if_slow_on_cpu(torch.float16, torch.device("cpu"), hint="training without `autocast`")


def test_native_bfloat16_is_silent(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(models, "_WARNED_DTYPES", set())
    assert models.native_half(torch.bfloat16) and models.native_half(torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.warn_if_slow_on_cpu(torch.bfloat16, "cpu")


def test_load_model_warns_on_an_emulating_cpu(cpu_without_half, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        model = models.load_model(models.BaseSpec(str(tmp_path)), dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_embedded_base_is_the_default_for_probes(adapters, monkeypatch):
    """No `base` with probe files: the embedded SmolLM2 when the adapters name it (silently) or name
    nothing (with a note); an adapter naming another model needs `base` (one line)."""
    import warnings

    from tada.models import default_base, resolve_base, smollm2_gguf

    embedded = smollm2_gguf()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert default_base([embedded.name]) == embedded
    with pytest.warns(UserWarning, match="no --base given|no `base` given"):
        assert default_base([None]) == embedded
    with pytest.raises(TadaError, match="`base` is needed.*meta-llama"):
        default_base(["meta-llama/Llama-2-7b-hf"])
    assert resolve_base("smollm2") == embedded
