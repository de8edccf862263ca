"""tada vs PEFT's ``add_weighted_adapter`` on Llama-2-7B-shaped adapters (a benchmark, not a test).

    python benchmarks/vs_peft.py                    # PEFT on 1 layer (4 modules), ours on 32 layers
    python benchmarks/vs_peft.py --peft-layers 2 --layers 32

Two random PEFT adapters (32 layers × q/k/v/o, 4096×4096, r=16, non-zero A and B, float32) and
random probe statistics are written once; then every side runs in its own child process, so each
reports its own peak RSS (``ru_maxrss``) next to the RSS it had before its work began (imports,
and for PEFT the base model it needs). PEFT runs on ``--peft-layers`` layers and its time is
extrapolated linearly to ``--layers`` (the output says so); ours runs on all modules for every
method. Relative distance to the exact answer in float64, on the first module:

* linear / task_arithmetic / cat: the weighted sum of the dense deltas;
* svd: its exact rank-r truncation (``torch.linalg.svd``);
* tada: the dense float64 oracle of the tests (``tests/reference.py``, Eqs. 1–8 entry by entry);
* knots / core_space / tsv / iso_c / iso_cts: the dense float64 oracles of tests/reference.py
  with each method's defaults, up to ``ORACLE_MAX_DIM`` (full d×d SVDs; above it "—": the tests
  check these rows against the same oracles at small sizes); no PEFT counterpart ("—");
* ties / dare_* / magnitude_prune: the same method on the same float32 ΔW (DARE: the same
  random draws) truncated with the exact SVD in float64 (ours: a randomized SVD in float32): the
  error of the randomized truncation. PEFT's ``*_svd``
  modes trim A and B rather than ΔW, so their results are not comparable and only times are.

Ours: after a warm-up merge of the small pair (first-call imports), best of 3 runs for the
low-rank methods, one run for the entry-wise ones; each run reads the adapters from disk and
keeps the result in a disk spool (not written to a folder).

The TaDA / svd / cat / linear / task_arithmetic rows compare with PEFT's ``svd`` time (the
same work: a rank-r adapter of the combined delta); the entry-wise rows with PEFT's matching
``*_svd`` mode. ``--in-process`` runs the workers in this process (for the tests: no RSS
isolation). Prints a table and a final JSON line.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

PEFT_TYPES = ["svd", "cat", "linear", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd"]
#: ours → the PEFT combination that does the same work
PAIRS = [("tada", "svd"), ("svd", "svd"), ("task_arithmetic", "svd"), ("linear", "linear"), ("cat", "cat"),
         ("ties", "ties_svd"), ("dare_linear", "dare_linear_svd"), ("dare_ties", "dare_ties_svd"),
         ("magnitude_prune", "magnitude_prune_svd"),
         # the subspace methods (issue #27): no PEFT counterpart ("—")
         ("knots", None), ("core_space", None), ("tsv", None), ("iso_c", None), ("iso_cts", None)]
ENTRYWISE = ("ties", "dare_linear", "dare_ties", "magnitude_prune")
SUBSPACE = ("knots", "core_space", "tsv", "iso_c", "iso_cts")
#: The subspace rows' error is against the dense float64 oracles of tests/reference.py (full SVDs
#: of d×d matrices: minutes each at 4096², so only up to this size; above it "—").
ORACLE_MAX_DIM = 1024


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


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def weights_for(name: str) -> list[float]:
    return [1.0, 1.0] if name in ("cat", "ties_svd", "dare_ties_svd", "ties", "dare_ties") else [0.5, 0.5]


def rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).norm() / y.norm())


# ---- workers ---------------------------------------------------------------------------------

def peft_worker(work: Path, combo: str, cfg: dict) -> dict:
    from peft import LoraConfig, PeftModel

    small = [work / "task-small", work / "domain-small"]
    base = Base(cfg["peft_layers"], cfg["dim"])
    config = LoraConfig.from_pretrained(str(small[0]))
    config.task_type = None  # a bare module tree, not a causal LM
    pm = PeftModel.from_pretrained(base, str(small[0]), adapter_name="task", config=config)
    pm.load_adapter(str(small[1]), adapter_name="domain")
    before = rss_mb()
    kw = {} if combo in ("svd", "cat", "linear") else {"density": cfg["density"]}
    if combo.endswith("svd"):
        kw["svd_rank"] = cfg["rank"]
    w = weights_for(combo)
    t0 = time.perf_counter()
    pm.add_weighted_adapter(["task", "domain"], w, "merged", combination_type=combo, **kw)
    seconds = time.perf_counter() - t0
    out = {"seconds_timed": seconds, "modules_timed": 4 * cfg["peft_layers"], "rss_before_mb": before, "peak_rss_mb": rss_mb()}
    if combo in ("svd", "cat", "linear"):
        target = pm.base_model.model.get_submodule(cfg["first"])
        WT, WD = (target.get_delta_weight(a).double() for a in ("task", "domain"))
        exact = w[0] * WT + w[1] * WD
        if combo == "svd":
            U, S, Vh = torch.linalg.svd(exact, full_matrices=False)
            exact = (U[:, :cfg["rank"]] * S[:cfg["rank"]]) @ Vh[:cfg["rank"]]
        out["rel_err"] = rel(target.get_delta_weight("merged").double(), exact)
    return out


def ours_worker(work: Path, method: str, cfg: dict) -> dict:
    import tada
    from tada.adapters import load_adapter
    from tada.methods import ModuleInput, get_method, make_params
    from tada.probes import ProbeStats

    stats = [ProbeStats.load(work / f"{side}.stats.safetensors") for side in ("domain", "general")]
    params = {} if method in ("tada", "task_arithmetic", *SUBSPACE) else {"weights": tuple(weights_for(method))}
    if method in ENTRYWISE:
        params["density"] = cfg["density"]
    before = rss_mb()
    # warm-up on the small pair (lazy imports, allocator), then the timed run(s): best of 3 for
    # the fast low-rank methods, one run for the entry-wise ones
    tada.merge(str(work / "task-small"), str(work / "domain-small"), method=method, params=params,
               domain_stats=stats[0], general_stats=stats[1], progress=False)
    seconds = float("inf")
    for _ in range(1 if method in ENTRYWISE else 3):
        t0 = time.perf_counter()
        res = tada.merge(str(work / "task"), str(work / "domain"), method=method, params=params,
                         domain_stats=stats[0], general_stats=stats[1], progress=False)
        seconds = min(seconds, time.perf_counter() - t0)
    peak = rss_mb()
    first = cfg["first"]
    got = (res.tensors[f"base_model.model.{first}.lora_B.weight"].double()
           @ res.tensors[f"base_model.model.{first}.lora_A.weight"].double())
    t, d = (load_adapter(str(work / side)).module(first) for side in ("task", "domain"))
    WT, WD = ((m.B.double() * m.scaling) @ m.A.double() for m in (t, d))
    r = cfg["rank"]
    if method in ("linear", "cat", "task_arithmetic"):
        w = (1.0, 1.0) if method == "task_arithmetic" else weights_for(method)
        exact = w[0] * WT + w[1] * WD
    elif method == "svd":
        U, S, Vh = torch.linalg.svd(0.5 * WT + 0.5 * WD, full_matrices=False)
        exact = (U[:, :r] * S[:r]) @ Vh[:r]
    elif method in SUBSPACE:
        if cfg["dim"] > ORACLE_MAX_DIM:
            exact = None
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from test_benchmarks import subspace_answer

            exact = subspace_answer(method, work / "task", work / "domain", first, WT, WD)
    elif method == "tada":
        sys.path.insert(0, str(ROOT / "tests"))
        import reference
        from tada.roles import TauTable

        exact, _ = reference.tada_dense(WT, WD, stats[0].means[first], stats[1].means[first],
                                     tau=TauTable().tau(first), rank=r)
    else:  # the exact truncation of the same entry-wise merge
        spec = get_method(method)
        from tada.methods.dense import dense_dtype

        module = ModuleInput(first, t, d, r)
        # the same dense work in the same precision (DARE: the same draws), exact float64 SVD of it
        same = str(dense_dtype(module, make_params(spec, params))).replace("torch.", "")
        ref = spec.fn(module, make_params(spec, {**params, "svd_solver": "exact", "precision": same}))
        exact = ref.B @ ref.A
    return {"seconds": seconds, "modules": cfg["modules"], "rss_before_mb": before, "peak_rss_mb": peak,
            "rel_err": None if exact is None else rel(got, exact),
            "reported_trunc_err_max": res.report["summary"].get("rel_error_max")}


def run_worker(kind: str, name: str, work: Path, cfg: dict, in_process: bool) -> dict:
    if in_process:
        return (peft_worker if kind == "peft" else ours_worker)(work, name, cfg)
    proc = subprocess.run([sys.executable, __file__, "--worker", f"{kind}:{name}", "--work", str(work)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind}:{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- main --------------------------------------------------------------------------------------

def prepare(work: Path, args) -> dict:
    from merge_speed import build  # the same random Llama-shaped adapters

    from tada.probes import ProbeStats

    names = [f"model.layers.{i}.self_attn.{m}" for i in range(args.layers) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
    for side, seed in (("task", 0), ("domain", 1)):
        build(work / side, names, args.dim, args.rank, seed)
        build(work / f"{side}-small", names[: 4 * args.peft_layers], args.dim, args.rank, seed)
    g = torch.Generator().manual_seed(2)
    for side in ("domain", "general"):
        ProbeStats({n: torch.randn(args.dim, generator=g, dtype=torch.float64) for n in names}, {}).save(
            work / f"{side}.stats.safetensors")
    cfg = {"layers": args.layers, "peft_layers": args.peft_layers, "dim": args.dim, "rank": args.rank,
           "density": args.density, "modules": len(names), "first": names[0]}
    (work / "config.json").write_text(json.dumps(cfg))
    return cfg


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--peft-layers", type=int, default=1)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--methods", default=",".join(ours for ours, _ in PAIRS),
                    help="comma-separated rows of ours to run (and the PEFT combinations they compare with)")
    ap.add_argument("--in-process", action="store_true", help="no child processes (tests; RSS not isolated)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="keep the adapters and merges in this folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)

    if args.worker:  # child process: one side, one method
        work = Path(args.work)
        kind, name = args.worker.split(":")
        out = run_worker(kind, name, work, json.loads((work / "config.json").read_text()), in_process=True)
        print(json.dumps(out))
        return out

    from merge_speed import work_folder

    with work_folder(args.out, "tada-vs-peft-") as work:  # the adapters (a 7B-shaped pair: ~270 MB) and spools
        return compare(work, args)


def compare(work: Path, args: argparse.Namespace) -> dict:
    """Both sides on the pair written into ``work``: PEFT's combinations, then ours."""
    cfg = prepare(work, args)
    scale = cfg["modules"] / (4 * args.peft_layers)
    pairs = [(ours, combo) for ours, combo in PAIRS if ours in args.methods.split(",")]
    peft = {}
    for combo in (c for c in PEFT_TYPES if c in {combo for _, combo in pairs}):
        peft[combo] = r = run_worker("peft", combo, work, cfg, args.in_process)
        r["seconds"] = r["seconds_timed"] * scale
        print(f"PEFT {combo:20s} {r['seconds']:9.1f} s (extrapolated)  peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)
    rows = []
    for ours, combo in pairs:
        o = run_worker("ours", ours, work, cfg, args.in_process)
        p = peft[combo] if combo else {}  # no PEFT counterpart: "—"
        row = {"ours": ours, "peft": combo, "peft_s_extrapolated": p.get("seconds"), "ours_s": o["seconds"],
               "speedup": p["seconds"] / o["seconds"] if p else None, "ours_rel_err": o["rel_err"],
               "peft_rel_err": p.get("rel_err"),
               "ours_peak_rss_mb": o["peak_rss_mb"], "ours_rss_before_mb": o["rss_before_mb"],
               "peft_peak_rss_mb": p.get("peak_rss_mb"), "peft_rss_before_mb": p.get("rss_before_mb"),
               "reported_trunc_err_max": o["reported_trunc_err_max"]}
        rows.append(row)
        oe, pe = (f"{x:.1e}" if x is not None else "—" for x in (row["ours_rel_err"], row["peft_rel_err"]))
        theirs = (f"{combo:20s} {p['seconds']:9.1f} s  {row['speedup']:8.0f}x" if p else f"{'—':20s} {'—':>11s}  {'—':>9s}")
        prss = f"{p['rss_before_mb']:.0f}→{p['peak_rss_mb']:.0f} MB" if p else "—"
        print(f"ours {ours:16s} {o['seconds']:8.2f} s  vs PEFT {theirs}  rel. err ours {oe} / PEFT {pe}  "
              f"RSS ours {o['rss_before_mb']:.0f}→{o['peak_rss_mb']:.0f} MB, PEFT {prss}", flush=True)
    print(f"PEFT timed on {4 * args.peft_layers} modules and extrapolated linearly to {cfg['modules']}; "
          f"ours on all {cfg['modules']} modules. torch threads {torch.get_num_threads()}.")
    result = {**cfg, "torch_threads": torch.get_num_threads(), "peft": peft, "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
