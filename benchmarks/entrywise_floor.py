"""Where an entry-wise merge's time goes, step by step, beside PEFT's ``*_svd`` time per module and
the ≥ 50× budget of issue #27 (a benchmark, not a test).

    python benchmarks/entrywise_floor.py            # one 4096² q_proj pair, r=16, density 0.5

Builds the random Llama-2-7B-shaped pair of ``benchmarks/vs_peft.py`` for one layer (4 modules),
times PEFT's ``add_weighted_adapter`` for each ``*_svd`` combination on those 4 modules (per module =
time / 4), then times ours on the first module: the whole method call and each step it is made of,
in this process, best of ``--repeat``:

* ``form ΔW``: both dense ΔW_i = c·B_i·A_i in float32 (into the engine's reused buffers);
* ``thresholds``: both exact top-k rules (TIES, magnitude pruning);
* ``DARE draws``: DARE's keep masks, as the method draws them (each input's own generator, chunk
  by chunk as int32 draws compared on their low 24 bits, the inputs in parallel threads): torch's
  mt19937 is sequential within a generator;
* ``merge pass``: the fused trim/drop + merge pass (DARE: the masks drawn before it);
* ``truncate``: the randomized SVD back to rank r (the entry-wise methods' last step).

The budget is PEFT's time per module / 50. Prints a table and a final JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from merge_speed import work_folder  # noqa: E402
from vs_peft import peft_worker, prepare  # noqa: E402

COMBOS = {"ties": "ties_svd", "dare_linear": "dare_linear_svd", "dare_ties": "dare_ties_svd",
          "magnitude_prune": "magnitude_prune_svd"}


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def steps(work: Path, cfg: dict, method: str, repeat: int) -> dict:
    """Our method on the first module, whole and step by step (ms)."""
    from tada.adapters import load_adapter
    from tada.methods import ModuleInput, get_method, make_params
    from tada.methods import sparsify
    from tada.methods.base import Workspace
    from tada.methods.dare import fused_drops
    from tada.methods.dense import dense_inputs, finish

    from vs_peft import weights_for

    first = cfg["first"]
    task, domain = (load_adapter(str(work / side)).module(first) for side in ("task", "domain"))
    spec = get_method(method)
    params = make_params(spec, {"weights": tuple(weights_for(method)), "density": cfg["density"]}, n_inputs=2)

    workspace = Workspace()  # as the engine: ΔW formed in buffers reused from call to call

    def module() -> ModuleInput:
        return ModuleInput(first, task, domain, cfg["rank"], workspace=workspace)

    out = {"whole": best_ms(lambda: spec.fn(module(), params), repeat)}
    deltas = dense_inputs(module(), params)
    out["form ΔW"] = best_ms(lambda: dense_inputs(module(), params), repeat)
    w = list(params.weights)
    scratch = torch.empty_like(deltas[0])  # the merge pass writes here (the method: in place, warm)
    if method.startswith("dare"):

        out["DARE draws"] = best_ms(lambda: fused_drops(module(), params), repeat)
        drops = fused_drops(module(), params)
        rule = "sum" if method == "dare_linear" else "ties"
        out["merge pass"] = best_ms(lambda: sparsify.merge_entrywise(deltas, w, rule, drops=drops, out=scratch),
                                    repeat)
        merged = sparsify.merge_entrywise(deltas, w, rule, drops=drops)
    else:
        out["thresholds"] = best_ms(lambda: [sparsify.trim_rule(d, params.density) for d in deltas], repeat)
        trims = [sparsify.trim_rule(d, params.density) for d in deltas]
        rule = "ties" if method == "ties" else "sum"
        out["merge pass"] = best_ms(lambda: sparsify.merge_entrywise(deltas, w, rule, trims=trims, out=scratch),
                                    repeat)
        merged = sparsify.merge_entrywise(deltas, w, rule, trims=trims)
    out["truncate"] = best_ms(lambda: finish(module(), merged, params), repeat)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--methods", default=",".join(COMBOS))
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each of our steps")
    args = ap.parse_args(argv)
    args.layers = args.peft_layers = 1
    methods = args.methods.split(",")
    with work_folder(None, "tada-entrywise-floor-") as work:
        cfg = prepare(work, args)
        peft = {m: 1000 * peft_worker(work, COMBOS[m], cfg)["seconds_timed"] / 4 for m in methods}
        ours = {m: steps(work, cfg, m, args.repeat) for m in methods}
    print(f"one {args.dim}² module, r={args.rank}, density {args.density}, {torch.get_num_threads()} torch threads "
          f"(PEFT: 4 modules timed, per module; ours: best of {args.repeat})")
    names = ["whole", "form ΔW", "thresholds", "DARE draws", "merge pass", "truncate"]
    print("| method | PEFT (ms) | 50× budget (ms) | " + " | ".join(f"ours: {s}" for s in names) + " | speed-up |")
    print("|---" * (len(names) + 4) + "|")
    for m in methods:
        cells = " | ".join(f"{ours[m][s]:.0f}" if s in ours[m] else "—" for s in names)
        print(f"| `{m}` | {peft[m]:.0f} | {peft[m] / 50:.0f} | {cells} | {peft[m] / ours[m]['whole']:.0f}× |")
    result = {"threads": torch.get_num_threads(), "peft_ms_per_module": peft, "ours_ms": ours}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
