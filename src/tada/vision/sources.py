"""Image sets by name or path: the offline loaders (:mod:`tada.vision.images`), the paper's hub
benchmarks (:mod:`tada.vision.hub_image_sets`) and image folders, behind one :func:`load_image_set`."""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable

import torch

from ..errors import TadaError
from .hub_image_sets import HUB_IMAGE_SETS, load_hub_image_set
from .images import ImageSet, fashion_mnist, image_folder, preprocess, sample, sklearn_digits


#: Offline loaders accepted by :func:`load_image_set` as ``NAME`` or ``NAME:SPLIT``.
LOADERS: dict[str, Callable[[str], ImageSet]] = {
    "fashion-mnist": fashion_mnist,
    "sklearn-digits": sklearn_digits,
}
#: The split a bare loader name means.
DEFAULT_SPLIT = {"fashion-mnist": "train", "sklearn-digits": "all"}


def loader_names() -> list[str]:
    """Every name :func:`load_image_set` takes besides a folder: offline loaders and hub sets."""
    return sorted(LOADERS) + sorted(HUB_IMAGE_SETS)


def load_image_set(source: str | os.PathLike, split: str | None = None) -> ImageSet:
    """An image set by name or path:

    * an offline loader: ``fashion-mnist[:train|test]``, ``sklearn-digits[:all|train|test]``
      (``fashion-mnist-test`` is ``fashion-mnist:test``);
    * one of the paper's hub benchmarks (:mod:`tada.vision.hub_image_sets`): ``cifar100[:test|train]`` …;
    * a folder (ImageFolder layout, or images directly in it: one class).

    ``split`` (when given) replaces the name's own split.
    """
    text = str(source)
    if not Path(text).exists():
        name, _, own = text.partition(":")
        if name == "fashion-mnist-test":
            name, own = "fashion-mnist", own or "test"
        if name in LOADERS:
            return LOADERS[name](split or own or DEFAULT_SPLIT[name])
        if name in HUB_IMAGE_SETS:
            return load_hub_image_set(name, split or own or "test")
        raise TadaError(f"image source not found: {source} (a folder, or one of {', '.join(loader_names())})")
    return image_folder(text, allow_flat=True)


def image_probe_inputs(source: str | os.PathLike, n: int, seed: int = 42) -> torch.Tensor:
    """TaDA probe inputs: ``n`` images of ``source`` (see :func:`load_image_set`) drawn with
    :func:`sample` → ``pixel_values`` ``[n, 3, 224, 224]`` (fewer when the set is smaller)."""
    return preprocess(sample(load_image_set(source), n, seed).pil_images())
