"""Tables 6 and 7: TaDA variants (ablation switches, mismatched probes) evaluated like ``tada bench``.

Each variant is a TaDA merge with its own parameters and/or domain probe; it is merged into
``out/adapters/<variant>/`` and scored on every dataset with :class:`tada.bench.text.Bench`
(cached and resumable the same way).
"""
from __future__ import annotations

import dataclasses
import re
import statistics
from dataclasses import dataclass, field

from .._util import PROGRESS_DELAY_S
from ..errors import TadaError
from .text import Bench, Run, frozen_params
from .vision import VisionBench


ABLATIONS: dict[str, dict] = {
    "full TaDA": {},
    "layer-level α": {"layer_alpha": True},
    "fixed α = 0.5": {"fixed_alpha": 0.5},
    "fixed α = 0.7": {"fixed_alpha": 0.7},
    "fixed α = 0.3": {"fixed_alpha": 0.3},
    "global τ = 1": {"global_tau": 1.0},
    "no filter": {"no_filter": True},
    "literal δ = 0.1": {"delta": 0.1},
    "filter task side only (Eq. 5)": {"filter_side": "task"},
    "keep only high-overlap": {"keep_high_overlap": True},
    "random filter (same count)": {"random_filter": True},
}


@dataclass
class Variant:
    name: str
    params: dict = field(default_factory=dict)
    domain_probe: str | None = None  # None: the config's


def slug(name: str) -> str:
    """``"fixed α = 0.5"`` → ``"fixed-0-5"``: ASCII letters and digits, runs of others → one dash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def evaluate_variants(cfg, variants: list[Variant], *, progress: bool = True) -> list[dict]:
    """Score every variant on ``cfg.datasets`` × ``cfg.scoring``; records as ``tada bench`` writes them."""
    from tqdm.auto import tqdm

    records = []
    benches: dict[str | None, Bench] = {}
    for v in tqdm(variants, desc="variants", unit="variant", disable=not progress, delay=PROGRESS_DELAY_S):
        probe = v.domain_probe or cfg.domain_probe
        if probe not in benches:  # one Bench (one loaded model) per domain probe
            benches[probe] = Bench(dataclasses.replace(cfg, domain_probe=probe), progress=False)
        bench = benches[probe]
        run = Run(f"variant-{slug(v.name)}", v.name, "tada", frozen_params(v.params))
        for d in cfg.datasets:
            for s in cfg.scoring:
                records.append({**bench.evaluate(run, d, s), "variant": v.name, "domain_probe": probe})
    return records


def evaluate_vision_variants(cfg, variants: list[Variant], *, progress: bool = True) -> list[dict]:
    """The same for a vision benchmark (:class:`tada.bench.vision.VisionBenchConfig`): top-1 on
    every set with the column's head recipe; records carry ``scoring="top1"``."""
    from tqdm.auto import tqdm

    if any(v.domain_probe for v in variants):
        raise TadaError("probe-mismatch variants are for language benchmarks; give vision probes in the config")
    bench = VisionBench(cfg, progress=False)
    records = []
    for v in tqdm(variants, desc="variants", unit="variant", disable=not progress, delay=PROGRESS_DELAY_S):
        for record in bench.row_records(f"variant-{slug(v.name)}", "tada", v.params):
            records.append({**record, "variant": v.name, "scoring": "top1"})
    return records


def variant_rows(records: list[dict], datasets: list[str], scoring: str, metric: str = "accuracy") -> list[dict]:
    """``[{"variant", dataset: (value, lo, hi), "average"}]`` in record order. ``metric``:
    ``accuracy`` (content accuracy for format scoring) or ``format_rate`` (format compliance)."""
    rows: dict[str, dict] = {}
    for r in records:
        if r["scoring"] == scoring and r["dataset"] in datasets:
            value = (r["accuracy"], *r["ci"]) if metric == "accuracy" else \
                (r["metrics"][metric], *r["metrics"][metric.replace("_rate", "_ci")])
            rows.setdefault(r["variant"], {"variant": r["variant"]})[r["dataset"]] = value
    for row in rows.values():
        row["average"] = statistics.fmean(row[d][0] for d in datasets if d in row)
    return list(rows.values())


def to_markdown(rows: list[dict], datasets: list[str], labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    names = [labels.get(d, d) for d in datasets]
    best = max(r["average"] for r in rows)
    lines = ["| variant | " + " | ".join(names) + " | Ave. |", "|---" * (len(names) + 2) + "|"]
    for r in rows:
        cells = [f"{r[d][0]:.3f} [{r[d][1]:.2f}, {r[d][2]:.2f}]" if d in r else "–" for d in datasets]
        avg = f"{r['average']:.3f}"
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + f" | {'**' + avg + '**' if r['average'] == best else avg} |")
    return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], out, title: str):
    """Horizontal bars of each variant's average accuracy (PNG + SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    names = [r["variant"] for r in rows][::-1]
    values = [r["average"] for r in rows][::-1]
    ax.barh(names, values, color=["#2b6cb0" if n == "full TaDA" else "#a0aec0" for n in names])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
    ax.set_xlabel("average over the sets")
    ax.set_xlim(0, max(values) * 1.15 if values else 1)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    fig.savefig(str(out).rsplit(".", 1)[0] + ".svg")
    plt.close(fig)
    return fig
