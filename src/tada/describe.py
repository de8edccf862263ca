"""``tada inspect``: what an adapter holds, without loading a base model."""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import torch

from .adapters import load_adapter
from .analysis import alpha_grid, report_domains
from .report import REPORT_NAME


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
    info = {"path": str(adapter.path), "base_model": adapter.base_model, "r": c.get("r"),
            "lora_alpha": c.get("lora_alpha"), "use_rslora": bool(c.get("use_rslora")),
            "target_modules": c.get("target_modules"), "modules": len(adapter.module_names),
            "dtype": str(adapter.dtype).replace("torch.", ""), "modules_to_save": c.get("modules_to_save"),
            "per_module": per_module}
    merge = merge_alpha(Path(adapter.path) / REPORT_NAME)
    if merge:
        info["merge"] = merge
    return info


def merge_alpha(report_path: Path) -> dict | None:
    """For a folder tada merged with TaDA: the method and the mean task weight α per layer — one
    row per domain adapter in a K-way merge (``{"method", "alpha": {domain: {layer: mean α}}}``)."""
    if not report_path.is_file():
        return None
    report = json.loads(report_path.read_text(encoding="utf-8"))
    rows = {}
    for domain in report_domains(report) or ["domain"]:
        grid = alpha_grid(report, domain if report_domains(report) else None)
        if grid["layers"]:
            rows[domain] = {layer: statistics.fmean(a[i] for a in grid["alpha"].values() if a[i] is not None)
                            for i, layer in enumerate(grid["layers"])}
    return {"method": report.get("method"), "alpha": rows} if rows else {"method": report.get("method")}
