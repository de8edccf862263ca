"""Our output loads with PeftModel.from_pretrained and gives the logits of base + merged ΔW by hand."""
from __future__ import annotations

import copy

import pytest
import torch

import tada
from tada.models import load_model, smollm2_gguf

from conftest import llama_shapes, merged_delta, write_adapter, write_probe


def logits_with_delta(model, tensors, ids):
    """The base model with W += B·A for every merged module, by hand (no PEFT)."""
    patched = copy.deepcopy(model)
    named = dict(patched.named_modules())
    with torch.no_grad():
        for key in tensors:
            if key.endswith("lora_A.weight"):
                name = key[len("base_model.model."):-len(".lora_A.weight")]
                named[name].weight += merged_delta(tensors, name).to(named[name].weight.dtype)
        return patched(ids).logits


def roundtrip(tmp_path, base_dir, model, shapes, method, gguf_file=None, **kw):
    from peft import PeftModel

    exact = {"target_modules": sorted(shapes)}  # adapt exactly these modules (the GGUF test uses two layers)
    task = write_adapter(tmp_path / "task", shapes, r=4, alpha=8, seed=0, base=str(base_dir), extra_config=exact)
    domain = write_adapter(tmp_path / "domain", shapes, r=6, alpha=6, seed=1, use_rslora=True, rank_pattern={"v_proj": 2},
                           base=str(base_dir), extra_config=exact)
    out = tmp_path / f"merged-{method}"
    res = tada.merge(task, domain, method=method, base=str(base_dir), gguf_file=gguf_file,
                     domain_probe=write_probe(tmp_path / "d.txt", seed=1),
                     general_probe=write_probe(tmp_path / "g.txt", seed=2), out=out, progress=False,
                     use_cache=False, **kw)
    ids = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29]])
    want = logits_with_delta(model, res.tensors, ids)
    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), out)
    peft_model.eval()
    with torch.no_grad():
        got = peft_model(ids).logits
    base = model(ids).logits
    assert not torch.allclose(base, want, atol=1e-3)  # the adapter changes something
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)  # fp32 through 30 layers


@pytest.mark.parametrize("method", ["tada", "cat", "ties", "svd"])
def test_tiny_llama_roundtrip(tmp_path, tiny_base, method):
    model = load_model(tada.models.resolve_base(str(tiny_base)))
    roundtrip(tmp_path, tiny_base, model, llama_shapes(model), method)


def test_smollm2_gguf_roundtrip(tmp_path):
    """The real pretrained base (GGUF): adapters on two layers, merged with TaDA, probes on the model."""
    spec = smollm2_gguf()
    model = load_model(spec)
    shapes = {n: s for n, s in llama_shapes(model).items() if ".layers.0." in n or ".layers.29." in n}
    roundtrip(tmp_path, spec.path, model, shapes, "tada", gguf_file=spec.gguf_file)


def test_smollm2_probe_stats_do_not_depend_on_batch_size():
    """On the real model (where padded batches do change float32 activations), probe statistics
    with batch size 1 and 8 are bit for bit the same."""
    from tada.models import load_tokenizer
    from tada.probes import extract_stats

    spec = smollm2_gguf()
    model, tok = load_model(spec), load_tokenizer(spec)
    texts = ["Fever: elevated body temperature.", "The Nile is a major north-flowing river in Africa.",
             "Mitochondrion inheritance: the distribution of mitochondria into daughter cells.",
             "Paris is the capital of France.", "A short one.",
             "Photosynthesis converts light energy into chemical energy stored in sugars by plants and algae."]
    names = ["model.layers.0.self_attn.q_proj", "model.layers.15.self_attn.o_proj", "model.layers.29.self_attn.v_proj"]
    one, eight = (extract_stats(model, tok, texts, names, batch_size=b, progress=False) for b in (1, 8))
    for name in names:
        assert torch.equal(one.means[name], eight.means[name])
