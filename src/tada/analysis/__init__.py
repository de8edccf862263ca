"""Analyses of merge reports (the per-layer α of Fig. 2, …)."""
from __future__ import annotations

from ..roles import layer_of

ROLE_ORDER = ("query", "key", "value", "attn_out", "qkv", "mlp", "other")


def alpha_grid(report: dict) -> dict:
    """Per-layer module α from a TaDA report: ``{"layers": [...], "roles": [...], "alpha": {role: [α or None]}}``.

    A role with several modules in one layer (e.g. MLP projections) shows their mean.
    """
    cells: dict[tuple[int, str], list[float]] = {}
    for name, entry in report.get("modules", {}).items():
        layer, alpha = layer_of(name), entry.get("alpha")
        if layer is None or not isinstance(alpha, float):
            continue
        cells.setdefault((layer, entry.get("role", "other")), []).append(alpha)
    layers = sorted({layer for layer, _ in cells})
    roles = [r for r in ROLE_ORDER if any(role == r for _, role in cells)]
    grid = {r: [(sum(v) / len(v)) if (v := cells.get((layer, r))) else None for layer in layers] for r in roles}
    return {"layers": layers, "roles": roles, "alpha": grid}
