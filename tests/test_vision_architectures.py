"""ViT, DeiT, DINOv2 and CLIP-vision through the same code: every linear module of each has a role
from the role table, and image probes average exactly the patch tokens (after CLS, distillation
and any other prefix tokens), checked against a hand computation on each tiny model."""
from __future__ import annotations

import pytest
import torch
from transformers import (CLIPVisionConfig, CLIPVisionModel, DeiTConfig, DeiTModel, Dinov2Config, Dinov2Model,
                          ViTConfig, ViTModel)

from tada.probes import linear_modules
from tada.roles import layer_of, role_of
from tada.vision.probes import extract_image_stats, patch_count

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=8,
             image_size=32)
MODELS = {
    "vit": (ViTModel, ViTConfig(**SMALL), 1),
    "deit": (DeiTModel, DeiTConfig(**SMALL), 2),  # CLS + distillation token
    "dinov2": (Dinov2Model, Dinov2Config(**SMALL), 1),
    "clip": (CLIPVisionModel, CLIPVisionConfig(**SMALL), 1),
}


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_roles_and_patch_token_means(arch):
    cls, config, prefix = MODELS[arch]
    torch.manual_seed(0)
    model = cls(config).eval()
    names = [n for n in linear_modules(model, "all-linear") if layer_of(n) is not None]  # not the pooler
    roles = {role_of(n) for n in names}
    assert {"query", "key", "value", "attn_out", "mlp"} <= roles and "other" not in roles, (arch, names)

    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert patch_count(model, pixels) == 16
    attn_out = next(n for n in names if role_of(n) == "attn_out")
    stats = extract_image_stats(model, pixels, [attn_out], progress=False)
    captured = []
    hook = model.get_submodule(attn_out).register_forward_pre_hook(lambda m, a, kw=None: captured.append(a[0]))
    with torch.no_grad():
        for image in pixels:
            model(pixel_values=image[None])
    hook.remove()
    seq = captured[0].shape[1]
    assert seq == prefix + 16  # the prefix tokens are skipped, the 16 patches kept
    want = sum(x[0, prefix:].double().sum(0) for x in captured) / 32
    torch.testing.assert_close(stats.means[attn_out], want)
