"""The benchmark scripts run at a tiny size, so they cannot rot (timings are never asserted)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_merge_speed_tiny(capsys):
    result = load("merge_speed").main(["--layers", "1", "--dim", "64", "--rank", "4", "--dense-modules", "2",
                                        "--repeat", "1"])
    methods = {r["method"] for r in result["rows"]}
    assert methods == {"linear", "task_arithmetic", "cat", "svd", "tada", "ties", "dare_linear", "dare_ties",
                       "magnitude_prune"}
    assert all(r["merge_s"] > 0 for r in result["rows"])
    assert "tada" in capsys.readouterr().out


def test_vs_peft_tiny():
    result = load("vs_peft").main(["--layers", "2", "--peft-layers", "1", "--dim", "64", "--rank", "4", "--in-process"])
    rows = {r["ours"]: r for r in result["rows"]}
    assert set(rows) == {"tada", "svd", "task_arithmetic", "cat", "linear", "ties", "dare_linear", "dare_ties",
                         "magnitude_prune"}
    for exact in ("tada", "svd", "task_arithmetic", "cat", "linear"):
        assert rows[exact]["ours_rel_err"] <= 1e-6, exact  # against the dense float64 answer
    for entrywise in ("ties", "dare_linear", "dare_ties", "magnitude_prune"):
        assert rows[entrywise]["ours_rel_err"] <= 1e-6  # small modules: the exact SVD is used
    assert rows["cat"]["peft_rel_err"] <= 1e-5  # PEFT's cat is exact too
    assert rows["linear"]["peft_rel_err"] > 0.1  # PEFT's factor-wise linear is not the weighted sum
    assert all(r["ours_peak_rss_mb"] > 0 and r["peft_s_extrapolated"] > 0 for r in rows.values())


def test_vs_peft_worker_process(tmp_path):
    """The child-process path (what the real run uses for per-side peak RSS)."""
    vs = load("vs_peft")
    import argparse

    cfg = vs.prepare(tmp_path, argparse.Namespace(layers=1, peft_layers=1, dim=32, rank=2, density=0.5))
    out = vs.run_worker("ours", "ties", tmp_path, cfg, in_process=False)
    assert out["rel_err"] <= 1e-6 and out["peak_rss_mb"] >= out["rss_before_mb"] > 0


def test_scale_70b_one_layer():
    result = load("scale_70b").main(["--layers", "1", "--methods", "tada"])
    (row,) = result["rows"]
    assert row["modules"] == 7 and row["output_mb"] > 0 and row["peak_rss_mb"] >= row["rss_before_mb"]


def test_probe_overhead_tiny(tiny_base, tmp_path):
    probe = tmp_path / "p.txt"
    probe.write_text("the cell divides\ngene protein heart\nlung tissue\n")
    result = load("probe_overhead").main(["--base", str(tiny_base), "--probes", str(probe), "--repeat", "1"])
    assert result["inputs"] == 3 and result["tokens"] > 3 and result["plain_s"] > 0 and result["hooked_s"] > 0
