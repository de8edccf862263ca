"""The golden file of ``tests/test_methods_tada_delta.py::test_literal_delta_reproduces_the_adapters_of_before``.

``PYTHONPATH=<checkout of the commit>/src python tests/literal_delta_golden.py > tests/golden/literal_delta.json``
records, for each TaDA variant merged with the paper's literal δ = 0.1 on a fixed random pair,
what the merge wrote (:func:`fingerprint`). It imports nothing of tada but ``tada.merge``, so it
runs against old checkouts.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

#: Wide enough that δ = 0.1 drops some but not all components (256/192-wide, r = 8).
WIDE = {f"model.layers.{i}.self_attn.{m}": s for i in range(3) for m, s in
        (("q_proj", (256, 192)), ("k_proj", (64, 192)), ("v_proj", (64, 192)), ("o_proj", (192, 256)))}
VARIANTS = {"full": {}, "keep_high_overlap": {"keep_high_overlap": True}, "random_filter": {"random_filter": True},
            "no_filter": {"no_filter": True}, "layer_alpha": {"layer_alpha": True},
            "fixed_alpha": {"fixed_alpha": 0.5}}


def fingerprint(folder: Path) -> dict[str, dict]:
    """What a merge wrote, independent of the CPU's rounding and of SVD sign choices: per module,
    the kept components (from the report) and ‖ΔW‖_F and uᵢᵀ ΔW vᵢ for three seeded unit pairs,
    ΔW = c·B·A in float64 from the written file."""
    from safetensors.torch import load_file

    cfg = json.loads((folder / "adapter_config.json").read_text())
    report = json.loads((folder / "tada_report.json").read_text())
    t = load_file(str(folder / "adapter_model.safetensors"))
    scaling = cfg["lora_alpha"] / cfg["r"]
    out = {}
    for name, m in sorted(report["modules"].items()):
        A = t[f"base_model.model.{name}.lora_A.weight"].double()
        B = t[f"base_model.model.{name}.lora_B.weight"].double()
        dw = scaling * B @ A
        g = torch.Generator().manual_seed(0)
        probes = []
        for _ in range(3):
            u, v = torch.randn(dw.shape[0], generator=g, dtype=torch.float64), torch.randn(dw.shape[1], generator=g,
                                                                                             dtype=torch.float64)
            probes.append(float(u @ dw @ v) / float(u.norm() * v.norm()))
        out[name] = {"kept_task": m["kept_task"], "kept_domain": m["kept_domain"],
                     "norm": float(dw.norm()), "probes": probes}
    return out


if __name__ == "__main__":  # record the golden file: see the module docstring
    import subprocess
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import tada
    from conftest import random_stats, write_adapter

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pair = (write_adapter(root / "task", WIDE, r=8, alpha=16, seed=10),
                write_adapter(root / "domain", WIDE, r=8, alpha=16, seed=11),
                random_stats(WIDE, seed=3), random_stats(WIDE, seed=4))
        merges = {}
        for variant, params in VARIANTS.items():
            tada.merge(pair[0], pair[1], params={"delta": 0.1, **params}, domain_stats=pair[2],
                       general_stats=pair[3], out=root / variant, progress=False)
            merges[variant] = fingerprint(root / variant)
    commit = subprocess.run(["git", "-C", str(Path(tada.__file__).parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(json.dumps({"_about": f"tada.merge on main {commit} (before delta: auto) with the paper's literal delta "
                                "0.1 (then the default) on tests/test_methods_tada_delta.py's random pair: per module the "
                                "kept components and a fingerprint of ΔW (see fingerprint()). `--delta 0.1` must "
                                "keep reproducing them.", "merges": merges}, indent=1, sort_keys=True))
