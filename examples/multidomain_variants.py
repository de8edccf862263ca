"""K-way TaDA variants of docs/results-multidomain.md, scored on the same test sets and paired
question by question against the default row (``tada``) of ``tada bench --preset
smollm2-multidomain``: ``domain_combine: mean`` (the setting the validation rule did *not* pick,
docs/methods.md) and ``no_filter`` (the ablation that names what Eq. 5's filter does with two
domain adapters). Not tuned on anything: every variant is reported.

Run after the bench, from the repository root: ``python examples/multidomain_variants.py``. The
merges and cells are cached in the bench's run folder (rows ``tada-mean``, ``tada-nofilter``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tada.bench.config import preset
from tada.bench.results import label
from tada.bench.text import Bench, BenchConfig, Run
from tada.eval.stats import paired

VARIANTS = {"tada-mean": ("K-way TaDA, domain_combine mean", {"domain_combine": "mean"}),
            "tada-nofilter": ("K-way TaDA, no filter (ablation)", {"no_filter": True})}


def outcomes(bench: Bench, row: str, dataset: str, field: str) -> dict[str, bool]:
    """A row's per-question outcomes on a set, found by the set's file name (the bench may have run
    from another checkout, whose absolute paths name its cells)."""
    (path,) = (bench.out / "results" / row).glob(f"*{Path(dataset).name}.format.jsonl")
    return {p["id"]: bool(p[field]) for p in map(json.loads, path.read_text().splitlines())}


def main() -> int:
    cfg = BenchConfig.from_dict(preset("smollm2-multidomain"), "preset smollm2-multidomain")
    bench = Bench(cfg)
    head = "| row | " + " | ".join(f"{label(d)} format | {label(d)} acc" for d in cfg.datasets) + " |"
    lines = [head, "|---" * (2 * len(cfg.datasets) + 1) + "|"]
    for key, (name, params) in VARIANTS.items():
        run = Run(key, key, "tada", tuple(sorted(params.items())))
        cells, diffs = [], []
        for d in cfg.datasets:
            r = bench.evaluate(run, d, "format")
            flo, fhi = r["metrics"]["format_ci"]
            lo, hi = r["ci"]
            cells += [f"{r['metrics']['format_rate']:.3f} [{flo:.2f}, {fhi:.2f}]",
                      f"{r['accuracy']:.3f} [{lo:.2f}, {hi:.2f}]"]
            for field in ("format_ok", "correct"):
                res = paired(outcomes(bench, key, d, field), outcomes(bench, "tada", d, field))
                diffs.append(f"{res.diff:+.3f} (p={res.p:.2g})")
        lines += [f"| {name} | " + " | ".join(cells) + " |", "| minus TaDA (default), McNemar | " + " | ".join(diffs) + " |"]
        report = json.loads((bench.out / "adapters" / key / "tada_report.json").read_text())
        print(f"{name}: mean α {report['summary']['alpha_mean']:.3f}; energy kept "
              + ", ".join(f"{k} {v['energy_kept']:.3f}" for k, v in report["summary"]["filter"].items() if k != "overlaps"),
              file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
