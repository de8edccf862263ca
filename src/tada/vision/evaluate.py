"""Top-1 image classification for a ViT-family model (SPEC §9, the paper's Table 4 metric).

Two heads, the same recipe for every row of a table:

* ``head_top1``: the classifier a task adapter carries in ``modules_to_save`` (its logits'
  argmax), when its label count is the benchmark's;
* ``linear_probe_top1``: otherwise, a scikit-learn ``LogisticRegression(C=1.0, max_iter=1000)``
  fitted on the frozen pooled feature (``pooler_output``, the CLS token's final state for
  ViT/DINOv2) of up to 5,000 seeded train images, scored on the test images.

Both return an ``ImageEvalResult`` with n, the 95% Wilson interval and which head was used.
:func:`evaluate_images` (``tada eval --images``) loads the model a row evaluates (base, base +
adapter, with the head of a chosen adapter) and picks the head by the recipe above.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..adapters import load_adapter
from ..errors import TadaError
from ..eval.mcq import wilson_interval
from ..models import parse_dtype, warn_if_slow_on_cpu
from .images import ImageSet, preprocess, sample
from .sources import load_image_set
from .train import head_name, HEAD_NAMES, load_classifier, read_labels


#: SPEC §9: at most this many seeded train images fit the linear probe.
PROBE_TRAIN_MAX = 5000


@dataclass
class ImageEvalResult:
    accuracy: float
    n: int
    ci: tuple[float, float]
    head: str  # "modules_to_save" or "linear_probe"
    predictions: list[int] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # what was evaluated: base, adapter, head source, sets


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
                        "use the linear probe (`head` linear-probe)")
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


# ---- a whole evaluation: model + head recipe (``tada eval --images``) ---------------------------

#: ``head=`` choices of :func:`evaluate_images`.
HEAD_CHOICES = ("auto", "adapter", "linear-probe")


def adapter_head(adapter: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``modules_to_save`` head of a PEFT adapter as ``{"weight": …, "bias": …}`` (keys as in
    the model's head module); one-line error when the adapter carries no head."""

    extras = load_adapter(adapter).extra_tensors()
    head: dict[str, torch.Tensor] = {}
    for key, tensor in extras.items():
        parts = key.removeprefix("base_model.model.").split(".")
        if len(parts) == 2 and parts[0] in HEAD_NAMES:
            head[parts[1]] = tensor
    if "weight" not in head:
        raise TadaError(f"adapter {adapter} carries no classification head in modules_to_save")
    return head


def load_evaluated(base: str, adapter: str | os.PathLike | None = None, *,
                   head_from: str | os.PathLike | None = None, device: str = "cpu",
                   model_dtype: str | None = None):
    """The classifier a row evaluates: ``base`` (``AutoModelForImageClassification``) with
    ``adapter`` merged in (LoRA and its own head), then the head of ``head_from`` put on top
    (when given). Without any head the model has a 2-way placeholder head (only its features are
    used, by the linear probe)."""

    own = adapter_head(adapter) if adapter is not None and _has_head(adapter) else None
    size = own["weight"].shape[0] if own is not None else 2
    model = load_classifier(base, [str(i) for i in range(size)], device=device)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(load_adapter(adapter).path)).merge_and_unload()
    if head_from is not None:
        weights = adapter_head(head_from)
        name = head_name(model)
        old = getattr(model, name)
        if not isinstance(old, torch.nn.Linear) or old.in_features != weights["weight"].shape[1]:
            raise TadaError(f"the head of {head_from} ({tuple(weights['weight'].shape)}) does not fit "
                            f"{type(model).__name__}.{name}")
        new = torch.nn.Linear(old.in_features, weights["weight"].shape[0], bias="bias" in weights)
        new.load_state_dict(weights)
        setattr(model, name, new.to(old.weight.device))
        model.config.num_labels = weights["weight"].shape[0]
    dtype = parse_dtype(model_dtype)
    if dtype is not None:
        model.to(dtype)
        warn_if_slow_on_cpu(dtype, model.device)
    return model.eval()


def _has_head(adapter: str | os.PathLike) -> bool:
    try:
        adapter_head(adapter)
        return True
    except TadaError:
        return False


def _same_labels(a: list[str] | None, b: list[str]) -> bool:
    return a is not None and [x.strip().lower() for x in a] == [x.strip().lower() for x in b]


def choose_head(head_labels: list[str] | None, test: ImageSet, head: str = "auto",
                where: str = "the adapter") -> str:
    """``"modules_to_save"`` when the head's class names are the benchmark's (in order, case and
    spaces ignored), else ``"linear_probe"``; ``head="adapter"`` insists on the head (one-line
    error on a label-set mismatch), ``head="linear-probe"`` insists on the probe."""
    if head not in HEAD_CHOICES:
        raise TadaError(f"unknown head choice {head!r}; choose one of {', '.join(HEAD_CHOICES)}")
    if head == "linear-probe":
        return "linear_probe"
    if _same_labels(head_labels, test.classes):
        return "modules_to_save"
    if head == "adapter":
        if head_labels is None:
            raise TadaError(f"{where} has no labels.json naming its head's classes: cannot use its head "
                            "(use `head` auto or linear-probe)")
        raise TadaError(f"label set mismatch: {where}'s head has {len(head_labels)} classes "
                        f"({', '.join(head_labels[:3])}…) but {test.name} has {len(test.classes)} "
                        f"({', '.join(test.classes[:3])}…); use `head` linear-probe")
    return "linear_probe"


def evaluate_images(base: str, test_source: str | os.PathLike | ImageSet, *,
                    adapter: str | os.PathLike | None = None, head_from: str | os.PathLike | None = None,
                    head: str = "auto", train_source: str | os.PathLike | ImageSet | None = None,
                    n: int = 500, seed: int = 42, device: str = "cpu", model_dtype: str | None = None,
                    batch_size: int = 32) -> ImageEvalResult:
    """Top-1 of ``base`` (+ ``adapter``) on ``n`` images of ``test_source`` drawn with ``seed``.

    The head comes from ``head_from`` (default: ``adapter``) when its ``labels.json`` names the
    benchmark's classes; otherwise a linear probe is fitted on the evaluated model's frozen
    features of ``train_source`` (default: the ``:train`` split of a named set; a folder needs it
    given). ``result.meta`` says which head was used and where it came from.
    """

    test_full = test_source if isinstance(test_source, ImageSet) else load_image_set(test_source)
    test = sample(test_full, n, seed)
    head_adapter = head_from if head_from is not None else adapter
    labels = read_labels(head_adapter) if head_adapter is not None else None
    chosen = choose_head(labels, test, head, where=str(head_adapter or "the base model"))
    use_head = head_adapter if chosen == "modules_to_save" else None
    if chosen == "modules_to_save" and head_from is None:
        use_head = None  # the adapter's own head, merged with it
    model = load_evaluated(base, adapter, head_from=use_head, device=device, model_dtype=model_dtype)
    meta = {"base": str(base), "adapter": None if adapter is None else str(adapter), "test_set": test.name,
            "n": n, "seed": seed, "model_dtype": model_dtype or "float32"}
    if chosen == "modules_to_save":
        result = head_top1(model, test, batch_size)
        meta["head_from"] = str(head_adapter)
    else:
        train = probe_train_set(test_source, test_full, train_source)
        result = linear_probe_top1(model.base_model, train, test, seed=seed, batch_size=batch_size)
        meta.update({"head_from": None, "train_set": train.name,
                     "probe_train_images": min(PROBE_TRAIN_MAX, len(train))})
    result.meta = meta
    return result


def probe_train_set(test_source, test_full: ImageSet, train_source) -> ImageSet:
    """The linear probe's train images: given, else the ``train`` split of a named test set."""
    if isinstance(train_source, ImageSet):
        return train_source
    if train_source is not None:
        return load_image_set(train_source)
    if isinstance(test_source, ImageSet) or os.path.exists(str(test_source)):
        raise TadaError(f"{test_full.name}: the linear probe needs train images: give `train_set` "
                        "(a folder or a named set)")
    return load_image_set(str(test_source), split="train")
