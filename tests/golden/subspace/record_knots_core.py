"""Record the golden outputs of the authors' own KnOTS and Core Space merge code on small inputs.

Writes ``knots_core.npz`` (inputs and outputs) and ``knots_core.json`` (the cases: the authors'
merge configuration used, our method's parameters, the source commits) next to this file;
``tests/test_methods_knots_core.py::test_golden_*`` compares tada's ``knots`` / ``core_space``
against them.

Run (needs the two repositories as git directories, e.g. from the ``fetch`` tool's mirror):

    PYTHONPATH=src python tests/golden/subspace/record_knots_core.py \
        --knots-git /work/.mirror/gstoica27+KnOTS/repo \
        --core-git /work/.mirror/apanariello4+core-space-merging/repo

What runs, and what was changed to run it (the authors' code is copied to a scratch folder outside
this repository, /tmp/authors/…, and is not committed here):

- KnOTS (github.com/gstoica27/KnOTS): ``task_merger.py``, ``masking_ops.py``,
  ``merging_functions.py`` verbatim, except in ``task_merger.py`` the float32 casts of U, s, V in
  ``SVDMerger.apply_svd`` and of the result in ``reconstruct_merged_sd`` are made float64 (the
  comparison is at 1e-6; their float32 would give ~1e-7 noise and near-tie flips of the trim).
  ``utils.py`` imports clip/peft/transformers/sklearn and model code, so a shim ``utils.py`` holds
  only ``get_merging_fn`` and ``get_mask_fn``, their bodies copied verbatim from the authors'
  ``utils.py``. The real ``SVDMerger`` is constructed and its ``transform`` + ``merge`` run
  unchanged on a one-module "model" (a float64 ``nn.Linear`` with zero weight under the name
  ``layer``; a stand-in parameter handler returns ΔW_i = c_i B_i A_i as that module's fine-tuned
  weight).
- Core Space (github.com/apanariello4/core-space-merging): ``task_merger.py``,
  ``masking_ops.py``, ``merging_functions.py`` verbatim; the same kind of ``utils.py`` shim
  (``get_mask_fn`` only); a stub ``einops`` module (only ``get_knots_components`` uses it, which
  is not called). The real ``MatrixPerLayerMerger`` is constructed and its ``merge`` runs
  unchanged; the stand-in handler returns (A_i, c_i B_i) as the LoRA factors (the authors' code
  takes raw A, B — their adapters have alpha = r — so each adapter's scaling is folded into B,
  which is tada's convention too).
- DARE draws: the authors call ``torch.manual_seed(dare_seed)`` and then draw per adapter;
  the test reproduces these draws by passing ``torch.Generator().manual_seed(dare_seed)`` to
  ``tada.methods.knots_core.subspace_rule`` (tada's method itself seeds per module from ``seed``).
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
D_OUT, D_IN = 12, 10

#: name → (ranks, scalings, seed) of the random LoRA inputs
INPUTS = {
    "three": ((2, 3, 4), (0.5, 2.0, 1.25), 11),   # task + 2 domain adapters, unequal ranks and scalings
    "two": ((3, 4), (1.5, 0.75), 12),             # task + 1 domain adapter
    "equal3": ((3, 3, 3), (1.0, 1.0, 1.0), 13),   # equal ranks (TSV: every r_i ≥ int(Σr/n))
}

#: (case, method, inputs, the authors' merge_config, λ, our params)
CASES = [
    ("knots_ta", "knots", "three", {"merge_method": "tv", "merging_type": "sum", "topK": 100, "dare": False},
     1.0, {"rule": "ta", "scale": 1.0}),
    ("knots_ties", "knots", "three", {"merge_method": "ties", "merging_type": "mean", "topK": 20, "dare": False,
                                      "sign_resolve_mode": "sum_of_values"},
     0.6, {"rule": "ties", "density": 0.2, "scale": 0.6}),
    ("knots_ties_two", "knots", "two", {"merge_method": "ties", "merging_type": "mean", "topK": 20, "dare": False,
                                        "sign_resolve_mode": "sum_of_values"},
     0.6, {"rule": "ties", "density": 0.2, "scale": 0.6}),
    ("knots_dare_ties", "knots", "three", {"merge_method": "ties", "merging_type": "mean", "topK": 100, "dare": True,
                                           "dare_pruning_coeffs": 0.1, "dare_seed": 421,
                                           "sign_resolve_mode": "sum_of_values"},
     0.7, {"rule": "dare_ties", "density": 0.9, "scale": 0.7, "dare_seed": 421}),
    ("core_ta", "core_space", "three", {"merge_space": "core", "merge_method": "tv", "isotropize": False},
     1.0, {"rule": "ta", "scale": 1.0}),
    ("core_ties", "core_space", "three", {"merge_space": "core", "merge_method": "ties", "topK": 30,
                                          "isotropize": False},
     0.6, {"rule": "ties", "density": 0.3, "scale": 0.6}),
    ("core_tsv_two", "core_space", "two", {"merge_space": "core", "merge_method": "tsv", "isotropize": False},
     0.2, {"rule": "tsv", "scale": 0.2}),
    ("core_tsv_equal3", "core_space", "equal3", {"merge_space": "core", "merge_method": "tsv", "isotropize": False},
     0.2, {"rule": "tsv", "scale": 0.2}),
    ("core_iso_c", "core_space", "three", {"merge_space": "core", "merge_method": "tv", "isotropize": True},
     1.0, {"rule": "iso_c", "scale": 1.0}),
]


def make_inputs(ranks, scalings, seed):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(r, D_IN, generator=g, dtype=torch.float64),
             torch.randn(D_OUT, r, generator=g, dtype=torch.float64), float(c)) for r, c in zip(ranks, scalings)]


def _function_source(text: str, name: str) -> str:
    tree = ast.parse(text)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(text, node) or ""


def prepare(git_dir: str, dest: Path, shim_functions: list[str], float64_patch: bool) -> str:
    """Copy the authors' merge files at HEAD into ``dest``; write the utils/einops shims. Returns the commit."""
    dest.mkdir(parents=True, exist_ok=True)
    show = lambda path: subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"],  # noqa: E731
                                       check=True, capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    for f in ("task_merger.py", "masking_ops.py", "merging_functions.py"):
        text = show(f)
        if f == "task_merger.py" and float64_patch:
            before = text
            text = text.replace(".type(torch.float32)", ".type(torch.float64)")
            text = text.replace("(U @ sV_sd[key]).to(torch.float32)", "(U @ sV_sd[key]).to(torch.float64)")
            assert text != before, "float64 patch found nothing to change"
        (dest / f).write_text(text)
    utils = show("utils.py")
    shim = "from inspect import getmembers, isfunction\n\n\n" + "\n\n\n".join(
        _function_source(utils, n) for n in shim_functions) + "\n"
    (dest / "utils.py").write_text(shim)
    (dest / "einops.py").write_text("def rearrange(*a, **k):\n    raise NotImplementedError('stub')\n")
    return commit


def _fresh_import(folder: Path):
    for name in ("task_merger", "masking_ops", "merging_functions", "utils", "einops"):
        sys.modules.pop(name, None)
    sys.path.insert(0, str(folder))
    try:
        import task_merger
    finally:
        sys.path.remove(str(folder))
    return task_merger


class Handler:
    """Stand-in for the authors' LoRA handlers: one module ``layer``."""

    def __init__(self, source):
        if isinstance(source, torch.nn.Module):
            self.delta, self.ab = source.layer.weight.detach().clone(), None
        elif isinstance(source, tuple):
            A, B = source
            self.delta, self.ab = B @ A, (A, B)
        else:
            self.delta, self.ab = source, None

    def get_ft_parameters(self):
        return OrderedDict({"layer.weight": self.delta})

    def get_ft_ab_parameters(self):
        return OrderedDict({"layer.weight": self.ab})


def zero_model():
    m = torch.nn.Module()
    m.layer = torch.nn.Linear(D_IN, D_OUT, bias=False).double()
    with torch.no_grad():
        m.layer.weight.zero_()
    return m


def run_knots(tm, inputs, cfg, lam):
    deltas = [c * B @ A for A, B, c in inputs]
    merger = tm.SVDMerger(finetuned_models=deltas, pretrained_model=zero_model(), param_handler=Handler, device="cpu")
    merger.set_scaling_coeffs(lam)
    cfg = {"representation": "svd-vector", "concat_across_output": True, **cfg}
    merger.transform(cfg)
    return merger.merge(cfg).layer.weight.detach().clone()


def run_core(tm, inputs, cfg, lam):
    factors = [(A, c * B) for A, B, c in inputs]
    merger = tm.MatrixPerLayerMerger(finetuned_models=factors, pretrained_model=zero_model(), param_handler=Handler,
                                     device="cpu")
    merger.set_scaling_coeffs(lam)
    merger.lmc = False
    return merger.merge({"representation": "matrix_per_layer", **cfg}).layer.weight.detach().clone()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--knots-git", default="/work/.mirror/gstoica27+KnOTS/repo")
    ap.add_argument("--core-git", default="/work/.mirror/apanariello4+core-space-merging/repo")
    ap.add_argument("--scratch", default="/tmp/authors")
    args = ap.parse_args()
    scratch = Path(args.scratch)
    commits = {"knots": prepare(args.knots_git, scratch / "knots", ["get_merging_fn", "get_mask_fn"], True),
               "core_space": prepare(args.core_git, scratch / "core", ["get_mask_fn"], False)}
    modules = {"knots": _fresh_import(scratch / "knots")}
    modules["core_space"] = _fresh_import(scratch / "core")

    arrays: dict[str, np.ndarray] = {}
    for name, (ranks, scalings, seed) in INPUTS.items():
        for i, (A, B, c) in enumerate(make_inputs(ranks, scalings, seed)):
            arrays[f"{name}/A{i}"], arrays[f"{name}/B{i}"] = A.numpy(), B.numpy()
            arrays[f"{name}/scaling{i}"] = np.array(c)
    cases = []
    for case, method, inp, cfg, lam, ours in CASES:
        inputs = make_inputs(*INPUTS[inp])
        run = run_knots if method == "knots" else run_core
        arrays[f"{case}/delta"] = run(modules[method], inputs, cfg, lam).numpy()
        cases.append({"case": case, "method": method, "inputs": inp, "authors_merge_config": cfg,
                      "authors_scaling_coeffs": lam, "params": ours})
    np.savez(HERE / "knots_core.npz", **arrays)
    (HERE / "knots_core.json").write_text(json.dumps({
        "sources": {"knots": {"repo": "github.com/gstoica27/KnOTS", "commit": commits["knots"]},
                    "core_space": {"repo": "github.com/apanariello4/core-space-merging",
                                   "commit": commits["core_space"]}},
        "shape": [D_OUT, D_IN], "inputs": {k: {"ranks": list(v[0]), "scalings": list(v[1]), "seed": v[2]}
                                           for k, v in INPUTS.items()},
        "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {HERE}")


if __name__ == "__main__":
    main()
