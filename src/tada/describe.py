"""``tada inspect``: what an adapter holds, without loading a base model."""
from __future__ import annotations

import os

import torch

from .adapters import load_adapter


def frobenius(A: torch.Tensor, B: torch.Tensor, scaling: float) -> float:
    """‖c·B·A‖_F without forming B·A: sqrt(trace((BᵀB)(AAᵀ)))·|c|."""
    A64, B64 = A.double(), B.double()
    return abs(scaling) * float(torch.trace((B64.T @ B64) @ (A64 @ A64.T)).clamp_min(0).sqrt())


def describe(source: str | os.PathLike, *, revision: str | None = None) -> dict:
    adapter = load_adapter(source, revision=revision)
    c = adapter.config
    per_module = []
    for m in adapter.modules():
        d_out, d_in = m.shape
        per_module.append({"name": m.name, "rank": m.rank, "scaling": m.scaling, "d_out": d_out,
                           "d_in": d_in, "norm": frobenius(m.A, m.B, m.scaling)})
    return {"path": str(adapter.path), "base_model": adapter.base_model, "r": c.get("r"),
            "lora_alpha": c.get("lora_alpha"), "use_rslora": bool(c.get("use_rslora")),
            "target_modules": c.get("target_modules"), "modules": len(adapter.module_names),
            "dtype": str(adapter.dtype).replace("torch.", ""), "modules_to_save": c.get("modules_to_save"),
            "per_module": per_module}
