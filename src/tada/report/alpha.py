"""The per-layer task weight α of a TaDA report (Fig. 2's grid): what the merge summary, ``tada
inspect``, the results pages and the plots show."""
from __future__ import annotations

from ..roles import layer_of

ROLE_ORDER = ("query", "key", "value", "attn_out", "qkv", "mlp", "other")


def report_domains(report: dict) -> list[str]:
    """The domain adapters of a K-way TaDA report (``domain``, ``domain2``…), or ``[]`` for a
    two-adapter report (one α per module)."""
    for entry in report.get("modules", {}).values():
        if "alpha_by_domain" in entry:
            return list(report.get("inputs", {}).get("domains", entry["alpha_by_domain"]))
    return []


def source_name(source: object) -> str:
    """What a table calls an input: its folder's name (a hub id's last part), e.g. ``domain-hpo``."""
    text = str(source).replace("\\", "/").rstrip("/")
    name = text.rsplit("/", 1)[-1]
    return name if name not in ("", ".", "..") else text or "?"


def input_names(report: dict) -> dict[str, str]:
    """The report's inputs by the names a reader knows them by: ``{side: folder name}`` for
    ``task``, ``domain`` (``domain2``… in a K-way report), from ``report["inputs"]``'s sources; the
    side's own name where the report holds no source; two inputs of one name get their side added."""
    inputs = report.get("inputs", {}) or {}
    sides = {"task": inputs.get("task"), **({"domain": inputs.get("domain")} if "domain" in inputs else {}),
             **(inputs.get("domains") or {})}
    names = {side: source_name(info["source"]) if isinstance(info, dict) and info.get("source") else side
             for side, info in sides.items()}
    seen = [n for n in names.values()]
    return {side: (f"{n} ({side})" if seen.count(n) > 1 else n) for side, n in names.items()}


def input_name(report: dict, side: str | None) -> str | None:
    """:func:`input_names`' name for one side (None stays None)."""
    return None if side is None else input_names(report).get(side, side)


def alpha_rows(report: dict) -> list[str | None]:
    """What to draw one α grid for: each domain of a K-way report, else the one module α (None)."""
    return [*report_domains(report)] or [None]


def alpha_grid(report: dict, domain: str | None = None) -> dict:
    """Per-layer module α from a TaDA report: ``{"layers": [...], "roles": [...], "alpha": {role: [α or None]}}``.

    A role with several modules in one layer (e.g. MLP projections) shows their mean. ``domain``:
    in a K-way report, the α of the task against that domain adapter (Eq. 3 for (T, D_k));
    without it, the module's α (the mean over domains in a K-way report).
    """
    cells: dict[tuple[int, str], list[float]] = {}
    for name, entry in report.get("modules", {}).items():
        layer = layer_of(name)
        alpha = entry.get("alpha_by_domain", {}).get(domain) if domain else entry.get("alpha")
        if layer is None or not isinstance(alpha, float):
            continue
        cells.setdefault((layer, entry.get("role", "other")), []).append(alpha)
    layers = sorted({layer for layer, _ in cells})
    roles = [r for r in ROLE_ORDER if any(role == r for _, role in cells)]
    grid = {r: [(sum(v) / len(v)) if (v := cells.get((layer, r))) else None for layer in layers] for r in roles}
    return {"layers": layers, "roles": roles, "alpha": grid}
