"""What ``tada merge`` (and ``tada demo``) print about a merge: the per-layer α table, the overlap
filter's δ and kept energy, the truncation error."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .alpha import alpha_grid, alpha_rows, input_name, input_names


def print_summary(result, *, tables: bool = True) -> None:
    """What a merge did, in a few lines (mean α, kept components, δ and kept energy, truncation
    error); with ``tables`` also TaDA's per-layer α table (rows: layers; columns: roles)."""
    console = Console(stderr=True)
    rep = result.report
    summ = rep["summary"]
    for domain in alpha_rows(rep) if tables else []:
        table = alpha_table(alpha_grid(rep, domain), input_name(rep, domain))
        if table is not None:
            console.print(table)
    if alpha_grid(rep)["layers"]:
        console.print(f"mean α {summ['alpha_mean']:.3f} ± {summ['alpha_std']:.3f}; task-dominant "
                      f"{100 * summ['task_dominant_fraction']:.1f}% of {summ['modules']} modules; kept "
                      f"{summ['kept_task']}/{summ['components_task']} task and {summ['kept_domain']}/"
                      f"{summ['components_domain']} domain components")
        console.print(filter_line(rep))
    if "rel_error_max" in summ:
        console.print(f"truncation to rank: relative error mean {summ['rel_error_mean']:.3g}, max {summ['rel_error_max']:.3g}")
    else:
        console.print(f"{summ['modules']} modules merged exactly (rank r_T + r_D)")


def alpha_table(grid: dict, domain: str | None = None, title: str | None = None) -> Table | None:
    """The per-layer α table (rows: layers; columns: roles — at most seven, so it fits 80 columns
    however deep the model); in a K-way merge one per domain (``domain``: its name). None without
    layers. What ``tada merge --summary`` and ``tada inspect`` print."""
    if not grid["layers"]:
        return None
    against = f" against {domain}" if domain else ""
    table = Table(title=title or f"TaDA task weight α{against} per layer and role (α ≥ 0.5: task-dominant)")
    table.add_column("layer", justify="right")
    for role in grid["roles"]:
        table.add_column(role, justify="right", no_wrap=True)
    for i, layer in enumerate(grid["layers"]):
        cells = []
        for role in grid["roles"]:
            a = grid["alpha"][role][i]
            cells.append("" if a is None else f"[{'blue' if a >= 0.5 else 'green'}]{a:.2f}[/]")
        table.add_row(str(layer), *cells)
    return table


def filter_line(report: dict) -> str:
    """One line on TaDA's overlap filter: δ and where it came from, the overlap distribution, and
    the fraction of each adapter's energy Σσ² that reached the merge."""
    cal, filt = report.get("calibration", {}), report["summary"].get("filter", {})
    delta = cal.get("delta")
    head = f"δ = {delta:.4g}" if isinstance(delta, float) else f"δ = {delta}"
    if cal.get("delta_drop") is not None:
        head += f" (auto: q = {cal['delta_drop']} of {cal['pooled_overlaps']} overlaps, ≤ {cal['max_dropped']} dropped)"
    elif cal.get("delta_source"):
        head += f" ({cal['delta_source']})"
    ov = filt.get("overlaps")
    if ov:
        head += f"; overlaps p50 {ov['p50']:.3f} p95 {ov['p95']:.3f} p99 {ov['p99']:.3f} max {ov['max']:.3f}"
    parts, names = [], input_names(report)
    for side in [k for k in filt if k != "overlaps"]:
        if side in filt:
            roles = ", ".join(f"{r} {100 * v['energy_kept']:.0f}%" for r, v in filt[side]["by_role"].items())
            parts.append(f"{names.get(side, side)} {100 * filt[side]['energy_kept']:.1f}% ({roles})")
    return head + ("\nenergy Σσ² kept: " + "; ".join(parts) if parts else "")
