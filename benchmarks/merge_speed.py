"""Time every merge method on Llama-2-7B-shaped adapters (a benchmark, not a test).

    python benchmarks/merge_speed.py                 # 32 layers × q/k/v/o, 4096², r=16
    python benchmarks/merge_speed.py --layers 2      # quick look
    python benchmarks/merge_speed.py --dense-sample 1  # also time one dense 4096² SVD (PEFT's svd route)
    python benchmarks/merge_speed.py --methods tada,tada-literal  # TaDA with and without delta: auto

Builds two random PEFT adapters (A, B ~ N(0, 1/16), float32, non-zero) and random probe
statistics, then times ``tada.merge`` per method (adapters already on disk, probe statistics
given, output kept in memory) and the atomic write of the result. The entry-wise methods
(ties, dare_*, magnitude_prune) form each dense 4096² ΔW; they are timed on ``--dense-modules``
modules and extrapolated linearly to all modules (the output says so). The subspace methods
(knots, core_space, tsv, iso_c, iso_cts) run on every module like the other low-rank ones. Each
row reports its own peak RSS (the peak is reset before it where Linux allows; the adapters' pages
stay counted). Prints a table and a final JSON line.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file

import tada
from tada.adapters import write_adapter
from tada.probes import ProbeStats

EXACT = ("linear", "task_arithmetic", "cat", "svd", "tada", "tada-literal")
#: Rows that run a method with non-default parameters: TaDA with the paper's literal δ (no
#: calibration pass) beside TaDA's default ``delta: auto`` (two passes).
VARIANTS = {"tada-literal": ("tada", {"delta": 0.1})}
DENSE = ("ties", "dare_linear", "dare_ties", "magnitude_prune")
#: The subspace methods of issue #27 (low-rank class: every module, best of ``--repeat``).
SUBSPACE = ("knots", "core_space", "tsv", "iso_c", "iso_cts")


def reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ≥ 4.0: ``5`` into /proc/self/clear_refs), so each row
    reports its own peak; False where that is not possible (the peak then only grows)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak RSS since the last ``reset_peak`` (VmHWM), else since the process started (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(folder: Path, names: list[str], d: int, r: int, seed: int) -> Path:
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for n in names:
        tensors[f"base_model.model.{n}.lora_A.weight"] = torch.randn(r, d, generator=g) / r
        tensors[f"base_model.model.{n}.lora_B.weight"] = torch.randn(d, r, generator=g) / r
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": r, "lora_alpha": r, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "base_model_name_or_path": "meta-llama/Llama-2-7b-hf", "task_type": "CAUSAL_LM"}))
    return folder


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--dense-modules", type=int, default=2, help="modules timed for the entry-wise methods")
    ap.add_argument("--dense-sample", type=int, default=0, help="also time N dense torch.linalg.svd calls")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the low-rank methods")
    ap.add_argument("--methods", default=",".join(EXACT + SUBSPACE + DENSE), help="comma-separated rows to run")
    ap.add_argument("--out", help="keep the adapters and merges in this folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    with work_folder(args.out, "tada-bench-") as work:
        return run(args, work)


@contextmanager
def work_folder(out: str | None, prefix: str) -> Iterator[Path]:
    """The benchmark's folder: ``out`` when given (kept, for a test that checks the outputs), else
    a temporary folder removed at the end (the 7B-shaped adapters are hundreds of MB)."""
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        yield Path(out)
        return
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> dict:

    torch.set_num_threads(torch.get_num_threads())
    names = [f"model.layers.{i}.self_attn.{m}" for i in range(args.layers) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
    task = build(tmp / "task", names, args.dim, args.rank, 0)
    domain = build(tmp / "domain", names, args.dim, args.rank, 1)
    g = torch.Generator().manual_seed(2)
    stats = [ProbeStats({n: torch.randn(args.dim, generator=g, dtype=torch.float64) for n in names}, {}) for _ in range(2)]
    dense_names = names[: args.dense_modules]
    dense_task = build(tmp / "task_dense", dense_names, args.dim, args.rank, 0)
    dense_domain = build(tmp / "domain_dense", dense_names, args.dim, args.rank, 1)

    rows = []
    for method in args.methods.split(","):
        is_dense = method in DENSE
        name, params = VARIANTS.get(method, (method, None))
        t_in, d_in = (dense_task, dense_domain) if is_dense else (task, domain)
        best = float("inf")
        reset_peak()
        for _ in range(1 if is_dense else args.repeat):
            t0 = time.perf_counter()
            res = tada.merge(t_in, d_in, method=name, params=params, domain_stats=stats[0], general_stats=stats[1],
                             progress=False)
            best = min(best, time.perf_counter() - t0)
        peak = peak_mb()
        n_mod = len(dense_names) if is_dense else len(names)
        total = best * len(names) / n_mod
        t0 = time.perf_counter()
        write_adapter(tmp / f"out-{method}", res.tensors, res.config, {"tada_report.json": res.report})
        write_s = time.perf_counter() - t0
        rows.append({"method": method, "modules_timed": n_mod, "merge_s": total, "per_module_ms": 1000 * best / n_mod,
                     "extrapolated": is_dense, "write_s": write_s if not is_dense else None,
                     "rel_error_max": res.report["summary"].get("rel_error_max"), "peak_rss_mb": peak})
    dense_svd = None
    if args.dense_sample:
        W = torch.randn(args.dim, args.dim)
        t0 = time.perf_counter()
        for _ in range(args.dense_sample):
            torch.linalg.svd(W, full_matrices=True)
        dense_svd = (time.perf_counter() - t0) / args.dense_sample

    print(f"{len(names)} modules of {args.dim}×{args.dim}, r={args.rank}, torch threads {torch.get_num_threads()}")
    print(f"{'method':16s} {'merge (s)':>10s} {'ms/module':>10s} {'write (s)':>10s} {'max trunc err':>14s} "
          f"{'peak RSS (MB)':>14s}")
    for r in rows:
        note = f"  (timed on {r['modules_timed']} modules, extrapolated)" if r["extrapolated"] else ""
        w = f"{r['write_s']:.3f}" if r["write_s"] is not None else "-"
        e = f"{r['rel_error_max']:.3g}" if r["rel_error_max"] is not None else "exact"
        print(f"{r['method']:16s} {r['merge_s']:10.3f} {r['per_module_ms']:10.2f} {w:>10s} {e:>14s} "
              f"{r['peak_rss_mb']:14.0f}{note}")
    if dense_svd is not None:
        print(f"dense torch.linalg.svd of one {args.dim}² matrix (PEFT's svd route): {dense_svd:.2f} s "
              f"→ {dense_svd * len(names):.0f} s for {len(names)} modules (extrapolated)")
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"modules": len(names), "dim": args.dim, "rank": args.rank, "rows": rows,
              "dense_svd_s_per_module": dense_svd, "peak_rss_mb": process_peak}
    print(f"peak RSS of the whole run {process_peak:.0f} MB")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
