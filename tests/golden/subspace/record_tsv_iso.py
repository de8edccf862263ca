"""Record the authors' own TSV-M, Iso-C and Iso-CTS on small fixed inputs (tests/golden/subspace/tsv_iso.npz).

The authors' code is NOT part of this repository. Make a scratch copy outside it first (both files
import only torch and math, so they are copied whole and loaded as they are):

    mkdir -p /tmp/authors/iso-merging/src/utils /tmp/authors/task_singular_vectors/src/utils
    git --git-dir=<clone of github.com/danielm1405/iso-merging>/.git \\
        show d34010af8ba129ef4d17a91ca9943b413fe06f8c:src/utils/iso.py \\
        > /tmp/authors/iso-merging/src/utils/iso.py
    git --git-dir=<clone of github.com/AntoAndGar/task_singular_vectors>/.git \\
        show a6c97188f7aa0bb20753de4f2939be89dd64f1c3:src/utils/TSVM_utils.py \\
        > /tmp/authors/task_singular_vectors/src/utils/TSVM_utils.py
    python tests/golden/subspace/record_tsv_iso.py [--authors /tmp/authors]

Functions recorded: ``iso.iso_c`` and ``iso.iso_cts`` (Iso paper's repository; the same
functions are in ArkNightmaster/AwRank-Merging src/utils/iso.py, differing only in comments) and
``TSVM_utils.compute_and_sum_svd_mem_reduction`` (TSV paper's repository; iso-merging carries an
identical copy). Each is called as in the authors' ``src/eval/aggregation.py``: ``task_vectors``
objects with a ``.vector`` dict, a config with ``device``, ``DATASETS`` (one name per task: only
its length is used) and ``method.common_space_fraction``. The scaling coefficient α is applied
outside these functions by the authors (``apply_to(..., scaling_coef)``), so the outputs are at
α = 1. Everything runs in float64 on the CPU.

Cases (d_out × d_in, LoRA ranks, scalings c_i): where Σr ≥ min(d_out, d_in) (and every kept TSV
component is non-zero) the authors' full-matrix rule and tada's low-rank rule must agree exactly;
the ``low`` case (Σr < min(d)) records the documented difference (docs/methods.md).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "tsv_iso.npz"
COMMITS = {"iso-merging": "d34010af8ba129ef4d17a91ca9943b413fe06f8c",
           "task_singular_vectors": "a6c97188f7aa0bb20753de4f2939be89dd64f1c3"}

#: name: (d_out, d_in, ranks, scalings, seed)
CASES = {
    "full2": (8, 6, (3, 4), (2.0, 0.75), 0),
    "full3": (8, 6, (3, 4, 5), (2.0, 0.75, 1.3), 1),
    "full3_wide": (6, 8, (3, 4, 5), (0.5, 1.5, 2.5), 2),
    "low3": (16, 12, (2, 3, 2), (2.0, 0.75, 1.3), 3),
}
FRACTIONS = (0.8, 0.3)


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def inputs(d_out, d_in, ranks, scalings, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for r, c in zip(ranks, scalings):
        A = torch.randn(r, d_in, generator=g, dtype=torch.float64)
        B = torch.randn(d_out, r, generator=g, dtype=torch.float64)
        out.append((A, B, c))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", default="/tmp/authors", type=Path)
    args = ap.parse_args()
    iso = load(args.authors / "iso-merging/src/utils/iso.py", "authors_iso")
    tsvm = load(args.authors / "task_singular_vectors/src/utils/TSVM_utils.py", "authors_tsvm")
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"commits": COMMITS, "fractions": FRACTIONS, "cases": {}}
    for case, (d_out, d_in, ranks, scalings, seed) in CASES.items():
        ins = inputs(d_out, d_in, ranks, scalings, seed)
        tvs = [SimpleNamespace(vector={"w": c * B @ A}) for A, B, c in ins]
        names = [f"T{i}" for i in range(len(ins))]
        for i, (A, B, _) in enumerate(ins):
            arrays[f"{case}/A{i}"], arrays[f"{case}/B{i}"] = A.numpy(), B.numpy()
        cfg = SimpleNamespace(device="cpu", DATASETS=names, method=SimpleNamespace(common_space_fraction=0.8))
        arrays[f"{case}/tsv"] = tsvm.compute_and_sum_svd_mem_reduction(tvs, cfg)["w"].numpy()
        arrays[f"{case}/iso_c"] = iso.iso_c(tvs, cfg)["w"].numpy()
        for f in FRACTIONS:
            cfg.method.common_space_fraction = f
            arrays[f"{case}/iso_cts_{f}"] = iso.iso_cts(tvs, cfg)["w"].numpy()
        meta["cases"][case] = {"shape": [d_out, d_in], "ranks": list(ranks), "scalings": list(scalings),
                               "seed": seed}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays)")


if __name__ == "__main__":
    main()
