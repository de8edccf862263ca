"""The whole ``tada merge`` command as a process, beside PEFT in the same run (a benchmark, not a test).

    python benchmarks/merge_cli.py                 # Llama-2-7B-shaped pair: 32 layers × q/k/v/o, 4096², r=16
    python benchmarks/merge_cli.py --layers 2      # quick look

Builds the random pair of ``benchmarks/merge_speed.py`` (and random probe statistics, saved as
``tada probe`` files), then times, each as a fresh process from start to exit (interpreter
start-up, imports, reading the adapters, the merge, the written folder):

* ``tada merge --method linear`` and ``tada merge`` (TaDA, the statistics given with
  ``--domain-stats``/``--general-stats``: no base model), best of ``--repeat``;
* the same process with an empty body (``python -c pass``), with ``import tada.cli`` only and with
  ``import torch`` only (every merge needs torch: the floor under any merge command), for scale;
* PEFT's ``add_weighted_adapter(combination_type="svd")`` (the same work as TaDA: a rank-r adapter
  of the combined delta) as a process that builds the meta-free stand-in model PEFT needs, loads
  both adapters and merges ``--peft-layers`` layers; its merge time is extrapolated linearly to
  every layer (the output says so), its start-up and adapter loading are not; it writes nothing
  (tada's rows include writing the merged folder).

Prints a table and a final JSON line. The temporary folder is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from merge_speed import build, work_folder  # noqa: E402  (the same Llama-2-7B-shaped pair)

PEFT_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import torch
from peft import LoraConfig, PeftModel
sys.path.insert(0, {here!r})
from vs_peft import Base
cfg = json.loads({cfg!r})
model = Base(cfg["peft_layers"], cfg["dim"])
t1 = time.perf_counter()
config = LoraConfig.from_pretrained(cfg["task"])
config.task_type = None  # a bare module tree, not a causal LM
pm = PeftModel.from_pretrained(model, cfg["task"], adapter_name="task", config=config)
pm.load_adapter(cfg["domain"], adapter_name="domain")
t2 = time.perf_counter()
pm.add_weighted_adapter(["task", "domain"], [0.5, 0.5], "merged", combination_type="svd", svd_rank=cfg["rank"])
t3 = time.perf_counter()
print(json.dumps({{"startup_s": t1 - t0, "load_s": t2 - t1, "merge_s": t3 - t2}}))
"""


def timed(cmd: list[str], env: dict, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        best = min(best, time.perf_counter() - t0)
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])}…: exit {run.returncode}\n{run.stderr[-2000:]}")
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--peft-layers", type=int, default=1, help="layers PEFT merges (then extrapolated)")
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3, help="best of N processes")
    args = ap.parse_args(argv)
    with work_folder(None, "tada-merge-cli-") as tmp:
        return run(args, tmp)


def run(args: argparse.Namespace, tmp: Path) -> dict:
    from tada.probes import ProbeStats

    names = [f"model.layers.{i}.self_attn.{m}" for i in range(args.layers) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
    task, domain = build(tmp / "task", names, args.dim, args.rank, 0), build(tmp / "domain", names, args.dim, args.rank, 1)
    peft_names = names[: 4 * args.peft_layers]
    peft_task = build(tmp / "peft-task", peft_names, args.dim, args.rank, 0)
    peft_domain = build(tmp / "peft-domain", peft_names, args.dim, args.rank, 1)
    g = torch.Generator().manual_seed(2)
    for side in ("domain", "general"):
        ProbeStats({n: torch.randn(args.dim, generator=g, dtype=torch.float64) for n in names}, {}).save(
            tmp / f"{side}.stats.safetensors")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    py = sys.executable
    merge = [py, "-m", "tada", "merge", "--task", str(task), "--domain", str(domain), "--quiet", "--force"]
    rows = {
        "python -c pass": timed([py, "-c", "pass"], env, args.repeat),
        "import tada.cli": timed([py, "-c", "import tada.cli"], env, args.repeat),
        "import torch": timed([py, "-c", "import torch"], env, args.repeat),
        "tada merge --method linear": timed(merge + ["--method", "linear", "--out", str(tmp / "linear")], env,
                                            args.repeat),
        "tada merge (TaDA, statistics files)": timed(
            merge + ["--domain-stats", str(tmp / "domain.stats.safetensors"), "--general-stats",
                     str(tmp / "general.stats.safetensors"), "--out", str(tmp / "tada")], env, args.repeat),
    }
    cfg = json.dumps({"task": str(peft_task), "domain": str(peft_domain), "dim": args.dim, "rank": args.rank,
                      "peft_layers": args.peft_layers})
    best = None
    for _ in range(args.repeat):
        run_ = subprocess.run([py, "-c", PEFT_SCRIPT.format(here=str(HERE), cfg=cfg)], capture_output=True, text=True,
                              env=env)
        if run_.returncode != 0:
            raise SystemExit(f"PEFT: exit {run_.returncode}\n{run_.stderr[-2000:]}")
        out = json.loads(run_.stdout.strip().splitlines()[-1])
        total = out["startup_s"] + out["load_s"] + out["merge_s"] * args.layers / args.peft_layers
        if best is None or total < best["total_s"]:
            best = {**out, "total_s": total}
    assert best is not None
    print(f"{len(names)} modules of {args.dim}×{args.dim}, r={args.rank}; best of {args.repeat} processes")
    for name, seconds in rows.items():
        print(f"{name:40s} {seconds:8.2f} s")
    print(f"{'PEFT svd (process, merge extrapolated)':40s} {best['total_s']:8.2f} s  (start-up {best['startup_s']:.2f} s, "
          f"merge of {args.peft_layers} layer(s) {best['merge_s']:.2f} s × {args.layers / args.peft_layers:g})")
    result = {"modules": len(names), "dim": args.dim, "rank": args.rank, "rows": rows, "peft": best}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
