"""Fig. 2 of the paper: the per-layer task weight α against normalised depth, one row per role.

``plot_alpha(reports, "alpha.png")`` draws one panel per report (two side by side: language vs
vision), blue = task-dominant (α → 1), green = domain-dominant (α → 0), white = balanced.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TadaError
from ..report import REPORT_NAME, load
from ..report.alpha import alpha_grid, alpha_rows, input_name, source_name

ROLE_LABELS = {"query": "q", "key": "k", "value": "v", "attn_out": "o", "qkv": "qkv", "mlp": "mlp", "other": "other"}


def read_report(source: str | Path) -> dict:
    """A ``tada_report.json`` (or a merged folder holding one) from a TaDA merge."""
    p = Path(source)
    if not p.exists():
        raise TadaError(f"no TaDA report at {source}")
    report = load(source)
    p = p / REPORT_NAME if p.is_dir() else p
    if report.get("method") != "tada":
        raise TadaError(f"{p}: a {report.get('method')!r} merge has no per-layer α (use a TaDA report)")
    if not alpha_grid(report)["layers"]:
        raise TadaError(f"{p}: no per-module α with a layer index in this report")
    return report


def panel_title(source: str | Path) -> str:
    """A panel's name for a report read from ``source``: the merged folder's name (the folder
    holding a ``tada_report.json`` file), not the base model's file."""
    p = Path(source)
    return source_name(p.resolve().parent if p.is_file() or p.suffix == ".json" else p.resolve())


def _title(report: dict, fallback: str) -> str:
    base = (report.get("inputs", {}).get("task", {}) or {}).get("base_model") or fallback
    return str(base).rsplit("/", 1)[-1]


def plot_alpha(reports: list[dict], out: str | Path, titles: list[str] | None = None):
    """Draw the heatmaps; writes ``out`` (PNG) and the same name with ``.svg``. Returns the figure.

    Each panel's image data is the α grid (rows: roles q, k, v, o, …; columns: layers), NaN where
    a role has no module in a layer; the x axis is ℓ/L with ℓ the layer index and L the layer count.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("tada", ["#1b7837", "#ffffff", "#2166ac"])
    cmap.set_bad("#d9d9d9")
    # a K-way report gives one panel per domain adapter (α of the task against that domain)
    panels = [(i, report, domain) for i, report in enumerate(reports) for domain in alpha_rows(report)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 3.2), squeeze=False)
    image = None
    for ax, (i, report, domain) in zip(axes[0], panels):
        grid = alpha_grid(report, domain)
        layers, roles = grid["layers"], grid["roles"]
        data = [[float("nan") if a is None else a for a in grid["alpha"][r]] for r in roles]
        L = max(layers) + 1
        image = ax.imshow(data, aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                          extent=(min(layers) / L, (max(layers) + 1) / L, len(roles) - 0.5, -0.5))
        ax.set_yticks(range(len(roles)))
        ax.set_yticklabels([ROLE_LABELS.get(r, r) for r in roles])
        ax.set_xlabel("normalised depth ℓ / L")
        name = titles[i] if titles else _title(report, f"report {i + 1}")
        against = input_name(report, domain)
        ax.set_title(f"{name}{f', vs {against}' if against else ''} (L = {L})", fontsize=10)
    assert image is not None, "at least one report"
    cbar = fig.colorbar(image, ax=list(axes[0]), fraction=0.03, pad=0.02)
    cbar.set_label("task weight α (blue: task, green: domain)")
    fig.suptitle("Per-layer task weight α (TaDA, Eq. 3)", fontsize=11)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    fig.savefig(out.with_suffix(".svg"), bbox_inches="tight")
    return fig


def line_plot(xs: list[float], ys: list[float], out: str | Path, *, xlabel: str, ylabel: str, title: str):
    """One marked line on a log-2 x axis (Table 5's probe-size curve); PNG + SVG beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(xs, ys, marker="o", color="#2b6cb0")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    fig.savefig(Path(out).with_suffix(".svg"))
    plt.close(fig)
    return fig
