"""``tada inspect``: what an adapter holds, without loading a base model."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

import numpy as np

from ..adapters import load_adapter
from .alpha import alpha_grid, input_names, report_domains
from . import REPORT_NAME, load


def frobenius(A: np.ndarray, B: np.ndarray, scaling: float) -> float:
    """‖c·B·A‖_F without forming B·A: sqrt(trace((BᵀB)(AAᵀ)))·|c| (A: r×d_in, B: d_out×r, float64)."""
    return abs(scaling) * float(np.sqrt(max(float(np.trace((B.T @ B) @ (A @ A.T))), 0.0)))


def describe(source: str | os.PathLike, *, revision: str | None = None) -> dict:
    adapter = load_adapter(source, revision=revision)
    c = adapter.config
    per_module = []
    for name in adapter.module_names:  # numpy: inspect starts without torch
        A, B = adapter.factor_arrays(name)
        scaling = adapter.scaling(name)
        per_module.append({"name": name, "rank": A.shape[0], "scaling": scaling, "d_out": B.shape[0],
                           "d_in": A.shape[1], "norm": frobenius(A, B, scaling)})
    info = {"path": str(adapter.path), "base_model": adapter.base_model, "r": c.get("r"),
            "lora_alpha": c.get("lora_alpha"), "use_rslora": bool(c.get("use_rslora")),
            "target_modules": c.get("target_modules"), "modules": len(adapter.module_names),
            "dtype": adapter.stored_dtype, "modules_to_save": c.get("modules_to_save"),
            "per_module": per_module}
    merge = merge_alpha(Path(adapter.path) / REPORT_NAME)
    if merge:
        info["merge"] = merge
    return info


def merge_alpha(report_path: Path) -> dict | None:
    """For a folder tada merged with TaDA: the method and the mean task weight α per layer — one
    row per domain adapter in a K-way merge (``{"method", "alpha": {domain: {layer: mean α}}}``),
    the per-layer, per-role grids (``grids``: :func:`tada.report.alpha.alpha_grid` per domain) and
    the inputs' names (``names``: ``{side: folder name}``)."""
    if not report_path.is_file():
        return None
    report = load(report_path)
    rows, grids = {}, {}
    for domain in report_domains(report) or ["domain"]:
        grid = alpha_grid(report, domain if report_domains(report) else None)
        if grid["layers"]:
            rows[domain] = {layer: statistics.fmean(a[i] for a in grid["alpha"].values() if a[i] is not None)
                            for i, layer in enumerate(grid["layers"])}
            grids[domain] = grid
    names = input_names(report)
    if not rows:
        return {"method": report.get("method"), "names": names}
    return {"method": report.get("method"), "alpha": rows, "grids": grids, "names": names}
