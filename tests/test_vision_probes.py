"""Image probe statistics: patch-token means of module inputs on a tiny DINOv2 built from a config."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import Dinov2Config, Dinov2Model

from tada.errors import TadaError
from tada.roles import role_of
from tada.vision.probes import extract_image_stats, patch_count

MODULES = ["encoder.layer.0.attention.q_proj", "encoder.layer.1.attention.o_proj", "encoder.layer.1.mlp.fc2"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          patch_size=8, image_size=32)
    return Dinov2Model(config).eval()


def manual(model, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """By hand: q_proj's input is norm1(hidden state 0); o_proj's and fc2's inputs captured with
    forward hooks on a plain forward; mean over the 16 patch tokens (CLS excluded) of all images."""
    sums = {m: 0.0 for m in MODULES}
    for image in pixels:
        captured = {}
        hooks = [model.get_submodule(m).register_forward_hook(lambda mod, a, o, m=m: captured.__setitem__(m, a[0]))  # noqa: B023
                 for m in MODULES[1:]]
        with torch.no_grad():
            out = model(pixel_values=image[None], output_hidden_states=True)
        for h in hooks:
            h.remove()
        q_in = model.encoder.layer[0].norm1(out.hidden_states[0])
        for m, x in zip(MODULES, (q_in, captured[MODULES[1]], captured[MODULES[2]])):
            sums[m] = sums[m] + x[0, 1:].double().sum(0)  # tokens 1… = the patches
    return {m: s / (16 * len(pixels)) for m, s in sums.items()}


def test_patch_token_means_equal_manual_computation(model):
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert patch_count(model, pixels) == 16
    stats = extract_image_stats(model, pixels, MODULES, progress=False)
    want = manual(model, pixels)
    for m in MODULES:
        torch.testing.assert_close(stats.means[m], want[m], rtol=1e-6, atol=1e-7)
    assert stats.meta["tokens"] == 48 and stats.meta["inputs"] == 3
    # one image at a time, float64 sums in order: the first two images alone give their own mean
    two = extract_image_stats(model, pixels[:2], MODULES, progress=False)
    assert not torch.equal(two.means[MODULES[0]], stats.means[MODULES[0]])


def test_vision_module_roles():
    assert [role_of(m) for m in MODULES] == ["query", "attn_out", "mlp"]
    assert role_of("encoder.layer.3.attention.attention.value") == "value"  # hub names (transformers 4.x)
    assert role_of("encoder.layer.3.attention.output.dense") == "attn_out"


def test_bad_image_probe_inputs_are_one_line_errors(model):
    with pytest.raises(TadaError, match="N, 3, H, W"):
        extract_image_stats(model, torch.zeros(0, 3, 32, 32), MODULES, progress=False)
    with pytest.raises(TadaError):
        extract_image_stats(model, torch.zeros(1, 3, 32, 32), ["encoder.layer.0.nope"], progress=False)


def test_probe_images_cli_then_tada_merge_of_vit_adapters_loads_in_peft(tmp_path, model, capsys):
    """End to end on a tiny DINOv2: `tada probe --images` → stats files → `tada merge` of two PEFT
    LoRA adapters → PeftModel.from_pretrained gives the base with W + merged ΔW."""
    import copy

    from peft import LoraConfig, PeftModel, get_peft_model
    from PIL import Image

    from tada.cli import main
    from tada.probes import ProbeStats
    from tada.io.spool import TensorSpool  # noqa: F401  (the merge writes through it)

    base_dir = tmp_path / "base"
    model.save_pretrained(base_dir)
    g = torch.Generator().manual_seed(2)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            pixels = (torch.rand(40, 48, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    for side, seed in (("task", 0), ("domain", 1)):
        torch.manual_seed(seed)
        peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=targets))
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.1)
        peft_model.save_pretrained(tmp_path / side)
    for which, seed in (("domain", 42), ("general", 7)):
        code = main(["probe", "--images", "--base", str(base_dir), "--probe", str(tmp_path / "imgs"), "--n", "4",
                     "--seed", str(seed), "--adapter", str(tmp_path / "task"), "--out", str(tmp_path / f"{which}.st")])
        assert code in (0, None)
    stats = ProbeStats.load(tmp_path / "domain.st")
    assert len(stats.means) == 8 and stats.meta["inputs"] == 4
    code = main(["merge", "--task", str(tmp_path / "task"), "--domain", str(tmp_path / "domain"), "--quiet",
                 "--domain-stats", str(tmp_path / "domain.st"), "--general-stats", str(tmp_path / "general.st"),
                 "--out", str(tmp_path / "merged")])
    assert code in (0, None)
    capsys.readouterr()
    merged = PeftModel.from_pretrained(copy.deepcopy(model), str(tmp_path / "merged")).eval()
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "merged" / "adapter_model.safetensors"))
    config = json.loads((tmp_path / "merged" / "adapter_config.json").read_text())
    by_hand = copy.deepcopy(model)
    for name, module in by_hand.named_modules():
        if name.rsplit(".", 1)[-1] in targets:
            A = tensors[f"base_model.model.{name}.lora_A.weight"].double()
            B = tensors[f"base_model.model.{name}.lora_B.weight"].double()
            module.weight.data += (config["lora_alpha"] / config["r"] * B @ A).float()
    pixels = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        got = merged(pixel_values=pixels).last_hidden_state
        want = by_hand(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
