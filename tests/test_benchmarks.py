"""The benchmark scripts run at a tiny size, so they cannot rot (timings are never asserted)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from reference import SUBSPACE, subspace_answer

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def independent_answer(method: str, task: Path, domain: Path, names: list[str], stats, report: dict,
                       density: float) -> dict:
    """The exact float64 answer of every module, from the adapter files and tests/reference.py
    (never from tada's own code): what vs_peft's rows should be compared with at these sizes."""
    import math

    import reference as ref
    from conftest import dense_delta

    dense = {n: (dense_delta(task, n), dense_delta(domain, n)) for n in names}
    rank = 4  # --rank 4, r_T = r_D = 4
    want = {}
    if method == "tada":
        delta = report["params"].get("delta", "auto")
        if not isinstance(delta, (int, float)):  # SPEC §6 auto: pooled over every module, both adapters
            pooled = [o for WT, WD in dense.values() for side in ref.overlaps_dense(WT, WD) for o in side]
            delta = ref.auto_delta_naive(pooled, report["params"].get("delta_drop", 0.025))
    for n, (WT, WD) in dense.items():
        if method in ("linear", "cat"):
            w = (1.0, 1.0) if method == "cat" else (0.5, 0.5)
            want[n] = w[0] * WT + w[1] * WD
        elif method == "task_arithmetic":
            want[n] = WT + WD
        elif method == "svd":
            want[n] = ref.truncate(0.5 * WT + 0.5 * WD, rank)
        elif method == "tada":
            tau = {"q_proj": 1.0, "k_proj": 1.0, "v_proj": 1.2, "o_proj": 1.5}[n.rsplit(".", 1)[-1]]
            want[n], _ = ref.tada_dense(WT, WD, stats[0].means[n], stats[1].means[n], tau=tau, rank=rank,
                                        delta=delta if math.isfinite(delta) else 2.0)
        elif method == "ties":
            want[n] = ref.truncate(ref.ties_dense(WT, WD, density, (1.0, 1.0)), rank)
        elif method == "magnitude_prune":
            want[n] = ref.truncate(0.5 * ref.topk(WT, density) + 0.5 * ref.topk(WD, density), rank)
        elif method in SUBSPACE:
            want[n] = subspace_answer(method, task, domain, n, WT, WD)
        else:  # DARE: float64 draws seeded per (seed 0, module, side), rescaled by 1/density
            dropped = [ref.dare_drop(W, density, ref.seeded_generator(0, n, f"dare:{side}"))
                       for W, side in ((WT, "task"), (WD, "domain"))]
            merged = (0.5 * dropped[0] + 0.5 * dropped[1] if method == "dare_linear"
                      else ref.ties_elect(dropped[0], dropped[1], (1.0, 1.0)))
            want[n] = ref.truncate(merged, rank)
    return want


def test_merge_speed_tiny(capsys, monkeypatch, tmp_path):
    """Every row the speed benchmark times is the exact answer (tests/reference.py, never tada's
    code): a fast wrong merge fails here. Timings are never asserted."""
    import json

    import tada

    from conftest import merged_delta
    from tada.adapters import load_adapter

    captured = {}
    real_merge = tada.merge

    def recording_merge(task, domain, **kw):
        res = real_merge(task, domain, **kw)
        captured[(kw["method"], json.dumps(kw.get("params"), sort_keys=True))] = (Path(task), Path(domain), kw, res)
        return res

    monkeypatch.setattr(tada, "merge", recording_merge)
    result = load("merge_speed").main(["--layers", "1", "--dim", "64", "--rank", "4", "--dense-modules", "2",
                                        "--repeat", "1", "--out", str(tmp_path)])
    methods = {r["method"] for r in result["rows"]}
    assert methods == {"linear", "task_arithmetic", "cat", "svd", "tada", "tada-literal", "ties", "dare_linear",
                       "dare_ties", "magnitude_prune", *SUBSPACE}
    assert all(r["peak_rss_mb"] > 0 for r in result["rows"])
    rows = {r["method"]: r for r in result["rows"]}  # δ auto and the literal δ are the same merge shape
    assert rows["tada"]["modules_timed"] == rows["tada-literal"]["modules_timed"] == 4
    assert len(captured) == len(methods)
    for (method, _), (task, domain, kw, res) in captured.items():
        names = load_adapter(task).module_names
        want = independent_answer(method, task, domain, names, (kw["domain_stats"], kw["general_stats"]), res.report,
                                  density=0.5)
        for n in names:
            err = float((merged_delta(res.tensors, n) - want[n]).norm() / want[n].norm())
            assert err <= 1e-6, (method, n, err)
    assert "tada" in capsys.readouterr().out


def test_merge_speed_leaves_no_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    load("merge_speed").main(["--layers", "1", "--dim", "16", "--rank", "2", "--dense-modules", "1", "--repeat", "1",
                              "--methods", "linear,ties"])
    assert list(tmp_path.iterdir()) == []


def test_vs_peft_leaves_no_temporary_folder(tmp_path, monkeypatch):
    """/tmp/tada-vs-peft-* stayed behind after every run (issue #26)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    load("vs_peft").main(["--layers", "1", "--peft-layers", "1", "--dim", "16", "--rank", "2", "--in-process"])
    assert list(tmp_path.glob("tada-*")) == []  # (torch's own inductor cache may appear beside it)


def test_merge_cli_tiny(tmp_path, monkeypatch, capsys):
    """benchmarks/merge_cli.py: the whole tada merge process (linear; TaDA from statistics files)
    and PEFT's svd process, on a tiny pair; nothing left in the temporary folder."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = load("merge_cli").main(["--layers", "2", "--dim", "32", "--rank", "2", "--repeat", "1"])
    assert set(result["rows"]) == {"python -c pass", "import tada.cli", "import torch", "tada merge --method linear",
                                   "tada merge (TaDA, statistics files)"}
    assert all(s > 0 for s in result["rows"].values()) and result["peft"]["total_s"] > 0
    assert list(tmp_path.glob("tada-*")) == []


def test_entrywise_floor_tiny(tmp_path, monkeypatch, capsys):
    """benchmarks/entrywise_floor.py: PEFT's per-module time and each of our steps, every method,
    on a tiny pair; the steps are parts of the whole method call; nothing left behind."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = load("entrywise_floor").main(["--dim", "32", "--rank", "2", "--repeat", "1"])
    assert set(result["ours_ms"]) == set(result["peft_ms_per_module"]) == {"ties", "dare_linear", "dare_ties",
                                                                          "magnitude_prune"}
    for method, steps in result["ours_ms"].items():
        expected = {"whole", "form ΔW", "merge pass", "truncate"} | ({"DARE draws"} if method.startswith("dare")
                                                                    else {"thresholds"})
        assert set(steps) == expected and all(v > 0 for v in steps.values())
    assert "50× budget" in capsys.readouterr().out
    assert list(tmp_path.glob("tada-*")) == []


def test_the_suite_uses_its_own_cache(private_cache):
    from tada._util import cache_root
    from tada.probes import cache_dir

    assert cache_root() == private_cache != Path.home() / ".cache" / "tada"
    assert cache_dir().is_relative_to(private_cache)


def test_vs_peft_tiny(monkeypatch, tmp_path):
    import tada

    from conftest import merged_delta
    from tada.probes import ProbeStats

    captured = {}
    real_merge = tada.merge

    def recording_merge(task, domain, **kw):  # the benchmark's own merges, kept for the check below
        res = real_merge(task, domain, **kw)
        if not str(task).endswith("-small"):
            captured[kw["method"]] = (Path(task), Path(domain), kw["domain_stats"], kw["general_stats"], res)
        return res

    monkeypatch.setattr(tada, "merge", recording_merge)
    result = load("vs_peft").main(["--layers", "2", "--peft-layers", "1", "--dim", "64", "--rank", "4", "--in-process",
                                   "--out", str(tmp_path)])
    rows = {r["ours"]: r for r in result["rows"]}
    assert set(rows) == {"tada", "svd", "task_arithmetic", "cat", "linear", "ties", "dare_linear", "dare_ties",
                         "magnitude_prune", *SUBSPACE}
    assert set(captured) == set(rows)
    names = [f"model.layers.{i}.self_attn.{m}" for i in range(2) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
    for method, (task, domain, sd, sg, res) in captured.items():
        assert isinstance(sd, ProbeStats)
        want = independent_answer(method, task, domain, names, (sd, sg), res.report, result["density"])
        for n in names:
            got = merged_delta(res.tensors, n)
            err = float((got - want[n]).norm() / want[n].norm())
            assert err <= 1e-6, (method, n, err)
    for exact in ("tada", "svd", "task_arithmetic", "cat", "linear", *SUBSPACE):
        assert rows[exact]["ours_rel_err"] <= 1e-6, exact  # the benchmark's own figure agrees
    assert rows["cat"]["peft_rel_err"] <= 1e-5  # PEFT's cat is exact too
    assert rows["linear"]["peft_rel_err"] > 0.1  # PEFT's factor-wise linear is not the weighted sum
    assert all(r["ours_peak_rss_mb"] > 0 for r in rows.values())
    assert all(r["peft_s_extrapolated"] > 0 for r in rows.values() if r["ours"] not in SUBSPACE)
    assert all(r["peft"] is None and r["speedup"] is None for r in rows.values() if r["ours"] in SUBSPACE)


def test_vs_peft_worker_process(tmp_path):
    """The child-process path (what the real run uses for per-side peak RSS), on ``svd``, whose
    benchmark reference is independent of tada (torch.linalg.svd of the dense weighted sum); the
    dense deltas it starts from are checked against the files here."""
    vs = load("vs_peft")
    import argparse

    import reference as ref
    from conftest import dense_delta
    from tada.adapters import load_adapter

    cfg = vs.prepare(tmp_path, argparse.Namespace(layers=1, peft_layers=1, dim=32, rank=2, density=0.5))
    out = vs.run_worker("ours", "svd", tmp_path, cfg, in_process=False)
    assert out["rel_err"] <= 1e-6 and out["peak_rss_mb"] >= out["rss_before_mb"] > 0
    first = cfg["first"]
    for side in ("task", "domain"):  # the worker's ΔW = c·B·A equals the one read straight from the files
        m = load_adapter(str(tmp_path / side)).module(first)
        WT = (m.B.double() * m.scaling) @ m.A.double()
        assert torch.allclose(WT, dense_delta(tmp_path / side, first), rtol=1e-12, atol=1e-12)
    # and the worker's figure is a real distance: a wrong answer would not score ≤ 1e-6
    WT, WD = dense_delta(tmp_path / "task", first), dense_delta(tmp_path / "domain", first)
    exact = ref.truncate(0.5 * WT + 0.5 * WD, 2)
    assert float((ref.truncate(0.5 * WT + 0.5 * WD, 1) - exact).norm() / exact.norm()) > 1e-3


def test_scale_70b_one_layer():
    result = load("scale_70b").main(["--layers", "1", "--methods", "tada"])
    (row,) = result["rows"]
    assert row["modules"] == 7 and row["output_mb"] > 0 and row["peak_rss_mb"] >= row["rss_before_mb"]


def test_probe_overhead_tiny(tiny_base, tmp_path):
    probe = tmp_path / "p.txt"
    probe.write_text("the cell divides\ngene protein heart\nlung tissue\n")
    result = load("probe_overhead").main(["--base", str(tiny_base), "--probes", str(probe), "--repeat", "1"])
    assert result["inputs"] == 3 and result["tokens"] > 3 and result["plain_s"] > 0 and result["hooked_s"] > 0
