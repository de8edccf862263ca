"""Top-1 image classification for a ViT-family model (SPEC §9, the paper's Table 4 metric).

Two heads, the same recipe for every row of a table:

* ``head_top1``: the classifier a task adapter carries in ``modules_to_save`` (its logits'
  argmax), when its label count is the benchmark's;
* ``linear_probe_top1``: otherwise, a scikit-learn ``LogisticRegression(C=1.0, max_iter=1000)``
  fitted on the frozen pooled feature (``pooler_output``, the CLS token's final state for
  ViT/DINOv2) of up to 5,000 seeded train images, scored on the test images.

Both return an ``ImageEvalResult`` with n, the 95% Wilson interval and which head was used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import TadaError
from ..eval.mcq import wilson_interval
from .images import ImageSet, preprocess, sample

#: SPEC §9: at most this many seeded train images fit the linear probe.
PROBE_TRAIN_MAX = 5000


@dataclass
class ImageEvalResult:
    accuracy: float
    n: int
    ci: tuple[float, float]
    head: str  # "modules_to_save" or "linear_probe"
    predictions: list[int] = field(default_factory=list)


def _result(preds: list[int], labels: list[int], head: str) -> ImageEvalResult:
    correct = sum(int(p == y) for p, y in zip(preds, labels))
    return ImageEvalResult(correct / len(labels), len(labels), wilson_interval(correct, len(labels)), head, preds)


@torch.inference_mode()
def _batched(model, images: ImageSet, fn, batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    outs = []
    for start in range(0, len(images), batch_size):
        pixels = preprocess([images.image(i) for i in range(start, min(start + batch_size, len(images)))])
        outs.append(fn(model(pixel_values=pixels.to(device=device, dtype=dtype))).float().cpu())
    return torch.cat(outs)


def pooled_features(model, images: ImageSet, batch_size: int = 32) -> torch.Tensor:
    """[N, d] frozen features: ``pooler_output`` when the model has one, else the CLS state."""
    def pick(out):
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]

    return _batched(model, images, pick, batch_size)


def head_top1(classifier, test: ImageSet, batch_size: int = 32) -> ImageEvalResult:
    """Top-1 with the model's own classification head (``logits`` argmax)."""
    n_labels = getattr(getattr(classifier, "config", None), "num_labels", None)
    if n_labels is not None and n_labels != len(test.classes):
        raise TadaError(f"the head has {n_labels} labels but {test.name} has {len(test.classes)} classes: "
                        "use the linear probe (no --use-head)")
    logits = _batched(classifier, test, lambda out: out.logits, batch_size)
    return _result(logits.argmax(-1).tolist(), test.labels, "modules_to_save")


def linear_probe_top1(model, train: ImageSet, test: ImageSet, *, seed: int = 42,
                      batch_size: int = 32) -> ImageEvalResult:
    """Top-1 of a logistic-regression probe on frozen pooled features (SPEC §9's decision)."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise TadaError("the linear probe needs scikit-learn: pip install 'tada[vision]'") from None
    if train.classes != test.classes:
        raise TadaError(f"train set {train.name} and test set {test.name} have different classes")
    fit_on = sample(train, min(PROBE_TRAIN_MAX, len(train)), seed)
    if len(set(fit_on.labels)) < 2:
        raise TadaError(f"{train.name}: the linear probe needs train images of at least two classes")
    clf = LogisticRegression(C=1.0, max_iter=1000)
    clf.fit(pooled_features(model, fit_on, batch_size).numpy(), fit_on.labels)
    preds = clf.predict(pooled_features(model, test, batch_size).numpy())
    return _result([int(p) for p in preds], test.labels, "linear_probe")
