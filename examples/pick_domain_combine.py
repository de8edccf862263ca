"""Pick K-way TaDA's ``domain_combine`` default (sum or mean, SPEC §6b) on validation data only.

Runs the ``smollm2-multidomain`` preset's K-way TaDA merge with each setting and scores it, format
scoring, on the two validation sets (trained HPO and GO terms not in any test set, 50 each) and on
the task's own validation words; prints content accuracy and format compliance with 95% intervals
and the paired difference. The winner (higher mean content accuracy over the three sets; on a tie,
higher format compliance; then ``sum``, the simpler rule) became the default; the numbers are in
docs/methods.md. Run from the repository root: ``python examples/pick_domain_combine.py``.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path

from tada.bench.variants import Variant, evaluate_variants, slug
from tada.bench.grid import Grid
from tada.bench.results import label
from tada.bench.text import BenchConfig
from tada.bench.config import preset
from tada.eval.stats import paired

HERE = Path(__file__).resolve().parent


def main() -> int:
    cfg = BenchConfig.from_dict(preset("smollm2-multidomain"), "preset smollm2-multidomain")
    val = HERE / "data" / "val"
    cfg = dataclasses.replace(cfg, datasets=[str(val / "hpo_trained_format_val.jsonl"),
                                             str(val / "go_trained_format_val.jsonl"),
                                             str(val / "general_format_val.jsonl")],
                              limit=None, out="runs/smollm2-multidomain-val", report=None)
    variants = [Variant("sum", {"domain_combine": "sum"}), Variant("mean", {"domain_combine": "mean"})]
    records = evaluate_variants(cfg, variants)
    by = {(r["variant"], r["dataset"]): r for r in records}
    print("| domain_combine | " + " | ".join(f"{label(d)} acc | {label(d)} format" for d in cfg.datasets)
          + " | mean acc | mean format |")
    print("|---" * (2 * len(cfg.datasets) + 3) + "|")
    means = {}
    for v in variants:
        cells, accs, fmts = [], [], []
        for d in cfg.datasets:
            r = by[(v.name, d)]
            lo, hi = r["ci"]
            flo, fhi = r["metrics"]["format_ci"]
            cells += [f"{r['accuracy']:.3f} [{lo:.2f}, {hi:.2f}]",
                      f"{r['metrics']['format_rate']:.3f} [{flo:.2f}, {fhi:.2f}]"]
            accs.append(r["accuracy"])
            fmts.append(r["metrics"]["format_rate"])
        means[v.name] = (statistics.fmean(accs), statistics.fmean(fmts))
        print(f"| {v.name} | " + " | ".join(cells) + f" | {means[v.name][0]:.3f} | {means[v.name][1]:.3f} |")
    n = sum(by[("sum", d)]["n"] for d in cfg.datasets)
    print(f"\nn = {n} validation questions over {len(cfg.datasets)} sets")
    grid = Grid(cfg.out)
    for field, what in (("correct", "content accuracy"), ("format_ok", "format compliance")):
        def outcomes(variant: str, d: str, field: str = field) -> dict[str, bool]:
            path = grid.result_path(f"variant-{slug(variant)}", d, "format.jsonl")
            return {f"{d}:{p['id']}": bool(p[field]) for p in map(json.loads, path.read_text().splitlines())}

        a = {k: v for d in cfg.datasets for k, v in outcomes("sum", d).items()}
        b = {k: v for d in cfg.datasets for k, v in outcomes("mean", d).items()}
        res = paired(a, b)
        print(f"sum − mean, {what}: {res.diff:+.3f} (exact McNemar p = {res.p:.2g}, all three sets pooled)")
    winner = max(("sum", "mean"), key=lambda v: (round(means[v][0], 6), round(means[v][1], 6), v == "sum"))
    print(f"picked: domain_combine = {winner}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
