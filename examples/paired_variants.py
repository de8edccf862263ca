"""Paired comparison of ablation variants, question by question (exact McNemar test), from the
per-question predictions ``tada analyze ablation`` leaves in ``OUT/runs/results``.

    python examples/paired_variants.py docs/analyses-smollm2-format --scoring format \
        --datasets domain_trained_format,general_format
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tada.eval.stats import paired


def outcomes(folder: Path, dataset: str, scoring: str, field: str) -> dict[str, bool]:
    (path,) = folder.glob(f"*{dataset}*.{scoring}.jsonl")
    return {p["id"]: bool(p[field]) for p in map(json.loads, path.read_text().splitlines())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the --out folder of tada analyze ablation")
    ap.add_argument("--scoring", default="format")
    ap.add_argument("--datasets", required=True, help="comma-separated dataset name fragments")
    ap.add_argument("--against", default="variant-full-tada")
    args = ap.parse_args()
    results = args.out / "runs" / "results"
    datasets = args.datasets.split(",")
    fields = [("format_ok", "format compliance"), ("correct", "content accuracy")] if args.scoring == "format" \
        else [("correct", "accuracy")]
    for field, what in fields:
        print(f"{what}: variant minus {args.against} (McNemar p)")
        for variant in sorted(p.name for p in results.iterdir() if p.name != args.against):
            cells = []
            for d in datasets:
                r = paired(outcomes(results / variant, d, args.scoring, field),
                           outcomes(results / args.against, d, args.scoring, field))
                cells.append(f"{r.diff:+.3f} (p={r.p:.2g})")
            print(f"  {variant:40s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
