"""tada vs PEFT's ``add_weighted_adapter`` on Llama-2-7B-shaped adapters (a benchmark, not a test).

    python benchmarks/vs_peft.py                    # PEFT on 1 layer (4 modules), ours on 32 layers
    python benchmarks/vs_peft.py --peft-layers 2 --layers 32

PEFT runs on ``--peft-layers`` layers of q/k/v/o (4096×4096, r=16) and its time is extrapolated
linearly to ``--layers`` layers (the output says so); ours runs on all of them for the low-rank
methods and, like PEFT, on the small set (extrapolated) for the entry-wise ones. For each pairing
it reports both times, the ratio, and the relative distance of each result to the exact answer
in float64 on the first module (for svd: the exact rank-r truncation of the weighted sum; for
cat/linear: the exact weighted sum; for the entry-wise methods: no exact reference exists across
implementations, so only time is compared). Prints a table and a final JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

PAIRS = [("svd", "svd"), ("cat", "cat"), ("linear", "linear"), ("ties_svd", "ties"),
         ("dare_linear_svd", "dare_linear"), ("dare_ties_svd", "dare_ties"), ("magnitude_prune_svd", "magnitude_prune")]


class Attn(torch.nn.Module):
    def __init__(self, d: int):
        super().__init__()
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(self, name, torch.nn.Linear(d, d, bias=False))


class Layer(torch.nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.self_attn = Attn(d)


class Inner(torch.nn.Module):
    def __init__(self, layers: int, d: int):
        super().__init__()
        self.layers = torch.nn.ModuleList(Layer(d) for _ in range(layers))


class Base(torch.nn.Module):
    """Just the adapted modules of a Llama-shaped model (names as in LlamaForCausalLM)."""

    def __init__(self, layers: int, d: int):
        super().__init__()
        self.model = Inner(layers, d)


def main(argv: list[str] | None = None) -> dict:
    from peft import LoraConfig, PeftModel

    import tada
    from merge_speed import build as build_adapter  # the same random Llama-shaped adapters

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--peft-layers", type=int, default=1)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--density", type=float, default=0.5)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="tada-vs-peft-"))
    names = [f"model.layers.{i}.self_attn.{m}" for i in range(args.layers) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
    peft_names = names[: 4 * args.peft_layers]
    full = [build_adapter(tmp / side, names, args.dim, args.rank, seed) for side, seed in (("task", 0), ("domain", 1))]
    small = [build_adapter(tmp / f"{side}-small", peft_names, args.dim, args.rank, seed)
             for side, seed in (("task", 0), ("domain", 1))]

    with torch.device("cpu"):
        base = Base(args.peft_layers, args.dim)
    config = LoraConfig.from_pretrained(str(small[0]))
    config.task_type = None  # a bare module tree, not a causal LM
    pm = PeftModel.from_pretrained(base, str(small[0]), adapter_name="task", config=config)
    pm.load_adapter(str(small[1]), adapter_name="domain")
    first = peft_names[0]
    target = pm.base_model.model.get_submodule(first)
    WT = target.get_delta_weight("task").double()
    WD = target.get_delta_weight("domain").double()

    rows = []
    for peft_type, ours in PAIRS:
        kw = {"density": args.density} if peft_type not in ("svd", "cat", "linear") else {}
        if peft_type.endswith("svd"):
            kw["svd_rank"] = args.rank
        weights = [1.0, 1.0] if peft_type in ("cat", "ties_svd", "dare_ties_svd") else [0.5, 0.5]
        t0 = time.perf_counter()
        pm.add_weighted_adapter(["task", "domain"], weights, f"m_{peft_type}", combination_type=peft_type, **kw)
        peft_s = (time.perf_counter() - t0) * len(names) / len(peft_names)
        params = {"weights": tuple(weights)}
        if ours not in ("svd", "cat", "linear"):
            params["density"] = args.density
        dense = ours not in ("svd", "cat", "linear")  # entry-wise: timed on the same modules as PEFT
        inputs = small if dense else full
        t0 = time.perf_counter()
        res = tada.merge(str(inputs[0]), str(inputs[1]), method=ours, params=params, progress=False)
        ours_s = (time.perf_counter() - t0) * (len(names) / len(peft_names) if dense else 1.0)
        row = {"peft": peft_type, "ours": ours, "peft_s_extrapolated": peft_s, "ours_s": ours_s,
               "ours_extrapolated": dense, "speedup": peft_s / ours_s}
        exact = None
        if ours in ("cat", "linear"):
            exact = weights[0] * WT + weights[1] * WD
        elif ours == "svd":
            U, S, Vh = torch.linalg.svd(weights[0] * WT + weights[1] * WD, full_matrices=False)
            exact = U[:, :args.rank] @ torch.diag(S[:args.rank]) @ Vh[:args.rank]
        if exact is not None:
            theirs = target.get_delta_weight(f"m_{peft_type}").double()
            A = res.tensors[f"base_model.model.{first}.lora_A.weight"].double()
            B = res.tensors[f"base_model.model.{first}.lora_B.weight"].double()
            row["peft_rel_err"] = float((theirs - exact).norm() / exact.norm())
            row["ours_rel_err"] = float((B @ A - exact).norm() / exact.norm())
        rows.append(row)
        print(f"{peft_type:20s} PEFT {peft_s:9.1f} s   ours ({ours}) {ours_s:8.2f} s   {row['speedup']:8.0f}x   "
              + (f"rel. error PEFT {row['peft_rel_err']:.2e} / ours {row['ours_rel_err']:.2e}" if exact is not None else ""),
              flush=True)
    print(f"PEFT timed on {len(peft_names)} modules and extrapolated linearly to {len(names)}; ours on all "
          f"{len(names)} for svd/cat/linear, and like PEFT (extrapolated) for the entry-wise methods.")
    result = {"modules": len(names), "peft_modules_timed": len(peft_names), "dim": args.dim, "rank": args.rank,
              "torch_threads": torch.get_num_threads(), "rows": rows}
    print(json.dumps(result))
    return result


sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    main(sys.argv[1:])
