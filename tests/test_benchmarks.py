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
    result = load("vs_peft").main(["--layers", "2", "--peft-layers", "1", "--dim", "64", "--rank", "4"])
    rows = {r["ours"]: r for r in result["rows"]}
    assert set(rows) == {"svd", "cat", "linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"}
    for exact in ("svd", "cat", "linear"):
        assert rows[exact]["ours_rel_err"] <= 1e-6
    assert rows["cat"]["peft_rel_err"] <= 1e-5  # PEFT's cat is exact too
    assert rows["linear"]["peft_rel_err"] > 0.1  # PEFT's factor-wise linear is not the weighted sum
