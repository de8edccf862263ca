"""The K-way TaDA row of docs/results-multidomain.md with ``domain_combine: mean`` — the setting
the validation rule did *not* pick (docs/methods.md) — scored on the same test sets and paired
question by question against the default (``sum``) row of ``tada bench --preset smollm2-multidomain``.

Run after the bench, from the repository root: ``python examples/multidomain_mean_row.py``. The
merge and cells are cached in the bench's run folder (row ``tada-mean``).
"""
from __future__ import annotations

import json
import sys

from tada.eval.presets import preset
from tada.eval.reproduce import label
from tada.eval.runner import Bench, BenchConfig, Run
from tada.eval.stats import paired


def outcomes(bench: Bench, row: str, dataset: str, field: str) -> dict[str, bool]:
    path = bench.grid.result_path(row, dataset, "format.jsonl")
    return {p["id"]: bool(p[field]) for p in map(json.loads, path.read_text().splitlines())}


def main() -> int:
    cfg = BenchConfig.from_dict(preset("smollm2-multidomain"), "preset smollm2-multidomain")
    bench = Bench(cfg)
    run = Run("tada-mean", "tada-mean", "tada", (("domain_combine", "mean"),))
    print("| row | " + " | ".join(f"{label(d)} format | {label(d)} acc" for d in cfg.datasets) + " |")
    print("|---" * (2 * len(cfg.datasets) + 1) + "|")
    records = {d: bench.evaluate(run, d, "format") for d in cfg.datasets}
    cells = []
    for r in records.values():
        flo, fhi = r["metrics"]["format_ci"]
        lo, hi = r["ci"]
        cells += [f"{r['metrics']['format_rate']:.3f} [{flo:.2f}, {fhi:.2f}]", f"{r['accuracy']:.3f} [{lo:.2f}, {hi:.2f}]"]
    print("| TaDA K-way, domain_combine mean | " + " | ".join(cells) + " |")
    diffs = []
    for d in cfg.datasets:
        for field in ("format_ok", "correct"):
            res = paired(outcomes(bench, "tada-mean", d, field), outcomes(bench, "tada", d, field))
            diffs.append(f"{res.diff:+.3f} (p={res.p:.2g})")
    print("| mean − sum (McNemar) | " + " | ".join(diffs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
