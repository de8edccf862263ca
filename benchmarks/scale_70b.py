"""Merging 70B-sized adapters in bounded memory (a benchmark, not a test).

    python benchmarks/scale_70b.py                          # tada, svd, cat on all 560 modules
    python benchmarks/scale_70b.py --methods ties --layers 2  # an entry-wise method on 2 layers

Llama-2-70B shapes: 80 layers, hidden 8192, grouped-query k/v projecting to 1024, MLP 28672;
LoRA r=16 on q/k/v/o and gate/up/down (560 modules), bfloat16, random non-zero factors (each
adapter ≈ 0.4 GB). The adapters are written once (through ``TensorSpool``, never whole in
memory); then each method runs in its own child process: ``tada.merge`` reads the inputs
memory-mapped module by module, spools each merged module to disk and writes the output folder
from the spool. The child reports its wall time and its peak RSS (``ru_maxrss``) next to its RSS
after imports. TaDA gets random probe statistics (``--domain-stats``-style input: a 70B model
does not run here). Prints a table and a final JSON line.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HIDDEN, KV, MLP = 8192, 1024, 28672
#: module → (d_out, d_in)
SHAPES = {"self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (KV, HIDDEN), "self_attn.v_proj": (KV, HIDDEN),
          "self_attn.o_proj": (HIDDEN, HIDDEN), "mlp.gate_proj": (MLP, HIDDEN), "mlp.up_proj": (MLP, HIDDEN),
          "mlp.down_proj": (HIDDEN, MLP)}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def module_names(layers: int) -> list[str]:
    return [f"model.layers.{i}.{m}" for i in range(layers) for m in SHAPES]


def build(folder: Path, layers: int, rank: int, seed: int, scale: float = 1.0) -> Path:
    """A 70B-shaped bfloat16 LoRA adapter written tensor by tensor."""
    from tada.io.spool import TensorSpool

    g = torch.Generator().manual_seed(seed)
    spool = TensorSpool()
    for name in module_names(layers):
        d_out, d_in = SHAPES[name.split(".", 3)[3]]
        spool[f"base_model.model.{name}.lora_A.weight"] = (torch.randn(rank, d_in, generator=g) / rank).bfloat16()
        spool[f"base_model.model.{name}.lora_B.weight"] = (torch.randn(d_out, rank, generator=g) * scale / rank).bfloat16()
    folder.mkdir(parents=True)
    spool.save(folder / "adapter_model.safetensors", metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": rank, "task_type": "CAUSAL_LM",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "base_model_name_or_path": "meta-llama/Llama-2-70b-hf"}))
    return folder


def build_stats(path: Path, layers: int, seed: int) -> None:
    from tada.probes import ProbeStats

    g = torch.Generator().manual_seed(seed)
    ProbeStats({n: torch.randn(SHAPES[n.split(".", 3)[3]][1], generator=g, dtype=torch.float64)
                for n in module_names(layers)}, {}).save(path)


def worker(work: Path, method: str, out: Path) -> dict:
    import tada

    before = rss_mb()
    t0 = time.perf_counter()
    res = tada.merge(str(work / "task"), str(work / "domain"), method=method, domain_stats=str(work / "domain.stats"),
                     general_stats=str(work / "general.stats"), out=out, force=True, progress=False)
    seconds = time.perf_counter() - t0
    return {"method": method, "seconds": seconds, "write_s": res.timings.get("write"), "rss_before_mb": before,
            "peak_rss_mb": rss_mb(), "output_mb": (out / "adapter_model.safetensors").stat().st_size / 2**20,
            "modules": len(res.report["modules"]), "trunc_err_max": res.report["summary"].get("rel_error_max")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=80)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--methods", default="tada,svd,cat")
    ap.add_argument("--work", help="folder for the adapters (default: a temporary one, removed after)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = worker(Path(args.work), args.worker, Path(args.out))
        print(json.dumps(result))
        return result

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tada-70b-"))
    t0 = time.perf_counter()
    if not (work / "domain.stats").exists():
        build(work / "task", args.layers, args.rank, 0)
        build(work / "domain", args.layers, args.rank, 1, scale=0.5)
        build_stats(work / "general.stats", args.layers, 2)
        build_stats(work / "domain.stats", args.layers, 3)
    build_s = time.perf_counter() - t0
    adapter_mb = (work / "task" / "adapter_model.safetensors").stat().st_size / 2**20
    print(f"{len(module_names(args.layers))} modules, each adapter {adapter_mb:.0f} MB (bfloat16); built in {build_s:.0f} s",
          flush=True)
    rows = []
    for method in [m for m in args.methods.split(",") if m]:
        proc = subprocess.run([sys.executable, __file__, "--worker", method, "--work", str(work),
                               "--out", str(work / f"out-{method}")], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{method} failed:\n{proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{method:16s} {row['seconds']:8.1f} s (write {row['write_s']:.1f} s)  RSS {row['rss_before_mb']:.0f} → "
              f"{row['peak_rss_mb']:.0f} MB peak  output {row['output_mb']:.0f} MB", flush=True)
        shutil.rmtree(work / f"out-{method}", ignore_errors=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    result = {"layers": args.layers, "modules": len(module_names(args.layers)), "rank": args.rank,
              "adapter_mb": adapter_mb, "torch_threads": torch.get_num_threads(), "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
