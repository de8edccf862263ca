"""Top-1 image evaluation: the head path and the linear-probe path on a tiny DINOv2 and synthetic images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Dinov2Config, Dinov2ForImageClassification, Dinov2Model

from tada.errors import TadaError
from tada.vision.evaluate import head_top1, linear_probe_top1, pooled_features
from tada.vision.images import ImageSet, preprocess

CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=16,
              image_size=224)


def images(n: int, seed: int) -> ImageSet:
    """Class 0: dark noise, class 1: bright noise (separable by any sensible feature)."""
    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for i in range(n):
        label = i % 2
        base = 60 if label == 0 else 190
        pixels = np.clip(rng.normal(base, 25, (48, 48, 3)), 0, 255).astype(np.uint8)
        imgs.append(Image.fromarray(pixels))
        labels.append(label)
    return ImageSet(imgs, labels, ["dark", "bright"], f"synthetic-{seed}")


def test_linear_probe_separates_a_separable_set():
    torch.manual_seed(0)
    model = Dinov2Model(Dinov2Config(**CONFIG)).eval()
    res = linear_probe_top1(model, images(40, 1), images(20, 2), batch_size=8)
    assert res.head == "linear_probe" and res.n == 20 and res.accuracy >= 0.9
    assert res.ci[0] <= res.accuracy <= res.ci[1]


def test_head_top1_is_the_logits_argmax_and_checks_labels():
    torch.manual_seed(0)
    clf = Dinov2ForImageClassification(Dinov2Config(**CONFIG, num_labels=2)).eval()
    test = images(10, 3)
    res = head_top1(clf, test, batch_size=4)
    with torch.no_grad():
        want = clf(pixel_values=preprocess(test.pil_images())).logits.argmax(-1).tolist()
    assert res.predictions == want and res.head == "modules_to_save"
    assert res.accuracy == sum(p == y for p, y in zip(want, test.labels)) / 10
    three = ImageSet(test.images, test.labels, ["dark", "bright", "other"], "three")
    with pytest.raises(TadaError, match="3 classes"):
        head_top1(clf, three)


def test_pooled_features_shape_and_probe_errors():
    model = Dinov2Model(Dinov2Config(**CONFIG)).eval()
    assert pooled_features(model, images(3, 4)).shape == (3, 32)
    one_class = ImageSet(images(4, 5).images[:1], [0], ["dark", "bright"], "one")
    with pytest.raises(TadaError, match="two classes"):
        linear_probe_top1(model, one_class, images(2, 6))
