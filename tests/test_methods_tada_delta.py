"""``delta: auto`` (SPEC §6): δ calibrated on the pooled overlaps of the pair, at most ⌊q·n⌋
components dropped; a given δ (the paper's literal 0.1) reproduces the adapters of before."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import tada
from tada.cli import cli
from tada.errors import TadaError
from tada.methods.tada import auto_delta

import reference as ref
from conftest import random_stats, write_adapter
from literal_delta_golden import VARIANTS, WIDE, fingerprint

GOLDEN_FILE = Path(__file__).parent / "golden" / "literal_delta.json"
GOLDEN = json.loads(GOLDEN_FILE.read_text())["merges"]


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    return (write_adapter(root / "task", WIDE, r=8, alpha=16, seed=10),
            write_adapter(root / "domain", WIDE, r=8, alpha=16, seed=11),
            random_stats(WIDE, seed=3), random_stats(WIDE, seed=4))


def merge(wide, **params):
    task, domain, sd, sg = wide
    return tada.merge(task, domain, params=params, domain_stats=sd, general_stats=sg, progress=False)


def dropped(report: dict) -> int:
    return sum(len(m["sigma_task"]) - len(m["kept_task"]) + len(m["sigma_domain"]) - len(m["kept_domain"])
               for m in report["modules"].values())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.sampled_from([0.0, 0.025, 0.1, 0.3, 0.5, 0.99]))
def test_auto_delta_is_the_naive_pooled_quantile(ints, q):
    """Against SPEC §6 read literally, with many ties (values on a grid of 1/40)."""
    pooled = [i / 40 for i in ints]
    delta = auto_delta(torch.tensor(pooled, dtype=torch.float64), q)
    assert delta == ref.auto_delta_naive(pooled, q)
    assert sum(o >= delta for o in pooled) <= math.floor(q * len(pooled))


def test_auto_delta_distinct_values_drop_exactly_k():
    pooled = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    delta = auto_delta(pooled, 0.025)
    assert delta == float(pooled.sort(descending=True).values[24])  # the 25th largest
    assert int((pooled >= delta).sum()) == 25
    assert auto_delta(pooled, 0.0) > float(pooled.max())  # k = 0: just above the largest
    assert auto_delta(torch.zeros(0, dtype=torch.float64), 0.025) == math.inf


def test_default_is_auto_and_drops_at_most_q_n(wide):
    res = merge(wide)
    cal = res.report["calibration"]
    assert res.report["params"]["delta"] == "auto" and cal["delta_drop"] == 0.025
    n = sum(len(m["sigma_task"]) + len(m["sigma_domain"]) for m in res.report["modules"].values())
    assert cal["pooled_overlaps"] == n == 192 and cal["max_dropped"] == math.floor(0.025 * n) == 4
    # continuous overlaps, no module falls back: exactly ⌊q·n⌋ dropped, and exactly those ≥ δ
    assert dropped(res.report) == 4
    pooled = sorted((o for m in res.report["modules"].values() for o in m["overlap_task"] + m["overlap_domain"]),
                    reverse=True)
    assert cal["delta"] == pooled[3]
    for m in res.report["modules"].values():
        assert m["kept_task"] == [i for i, o in enumerate(m["overlap_task"]) if o < cal["delta"]]
        assert m["kept_domain"] == [j for j, o in enumerate(m["overlap_domain"]) if o < cal["delta"]]


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5])
def test_delta_drop_bounds_the_drops(wide, q):
    res = merge(wide, delta_drop=q)
    assert dropped(res.report) <= math.floor(q * 192)
    if q == 0.0:
        assert dropped(res.report) == 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_literal_delta_reproduces_the_adapters_of_before(wide, tmp_path, variant):
    """Same kept components and the same ΔW (to float32 rounding, 1e-5 of ‖ΔW‖) as main before
    ``delta: auto`` (the golden file says which commit; recorded by running
    tests/literal_delta_golden.py against it). Not bytes: LAPACK's rounding differs between CPUs (AVX-512 and AVX2 machines give
    different last bits in two of these variants)."""
    task, domain, sd, sg = wide
    tada.merge(task, domain, params={"delta": 0.1, **VARIANTS[variant]}, domain_stats=sd, general_stats=sg,
               out=tmp_path / "m", progress=False)
    got, want = fingerprint(tmp_path / "m"), GOLDEN[variant]
    assert got.keys() == want.keys()
    for name, g in got.items():
        w = want[name]
        assert (g["kept_task"], g["kept_domain"]) == (w["kept_task"], w["kept_domain"]), name
        assert g["norm"] == pytest.approx(w["norm"], rel=1e-5), name
        assert g["probes"] == pytest.approx(w["probes"], abs=1e-5 * w["norm"]), name


def test_literal_delta_filters_more_than_auto_here(wide):
    """On this 192/256-wide pair the literal 0.1 drops about half the components (why auto exists)."""
    lit, auto = merge(wide, delta=0.1), merge(wide)
    assert lit.report["calibration"] == {"delta": 0.1, "delta_source": "given"}
    assert dropped(lit.report) > 40 > dropped(auto.report)


def test_filter_side_task_keeps_every_domain_component(wide):
    both, task_only = merge(wide, delta=0.1), merge(wide, delta=0.1, filter_side="task")
    for name, m in task_only.report["modules"].items():
        assert m["kept_domain"] == list(range(len(m["sigma_domain"])))
        if both.report["modules"][name].get("notes") is None:  # no fallback: the task side is as in `both`
            assert m["kept_task"] == both.report["modules"][name]["kept_task"]
    assert dropped(task_only.report) < dropped(both.report)


def test_filter_summary_energy_by_role(wide):
    rep = merge(wide, delta=0.1).report
    filt = rep["summary"]["filter"]
    for side in ("task", "domain"):
        mods = [m for m in rep["modules"].values() if m["role"] == "key"]
        kept = sum(sum(m[f"sigma_{side}"][i] ** 2 for i in m[f"kept_{side}"]) for m in mods)
        total = sum(sum(x ** 2 for x in m[f"sigma_{side}"]) for m in mods)
        assert filt[side]["by_role"]["key"]["energy_kept"] == pytest.approx(kept / total, rel=1e-12)
        assert filt[side]["kept"] == rep["summary"][f"kept_{side}"]
    pooled = torch.tensor([o for m in rep["modules"].values() for o in m["overlap_task"] + m["overlap_domain"]],
                          dtype=torch.float64)
    assert filt["overlaps"]["p95"] == pytest.approx(float(torch.quantile(pooled, 0.95)), rel=1e-12)
    assert filt["overlaps"]["max"] == float(pooled.max())


@pytest.mark.parametrize("params, message", [
    ({"delta": "often"}, "delta must be 'auto' or a number > 0, got 'often'"),
    ({"delta": -0.1}, "delta must be 'auto' or a number > 0, got -0.1"),
    ({"delta_drop": 1.0}, "delta_drop must be in [0, 1)"),
    ({"filter_side": "domain"}, "filter_side must be one of both, task"),
])
def test_bad_values_are_one_line_errors(wide, params, message):
    with pytest.raises(TadaError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        merge(wide, **params)


def test_cli_reports_delta_and_energy(wide, tmp_path):
    task, domain, sd, sg = wide
    sd.save(tmp_path / "d.safetensors")
    sg.save(tmp_path / "g.safetensors")
    base = ["merge", "--task", str(task), "--domain", str(domain), "--domain-stats", str(tmp_path / "d.safetensors"),
            "--general-stats", str(tmp_path / "g.safetensors")]
    runner = CliRunner()
    out = runner.invoke(cli, [*base, "--out", str(tmp_path / "a")])
    assert out.exit_code == 0, out.output
    assert "(auto: q = 0.025 of 192 overlaps, ≤ 4 dropped)" in out.output and "energy Σσ² kept: task" in out.output
    out = runner.invoke(cli, [*base, "--out", str(tmp_path / "b"), "--delta", "0.1", "--filter-side", "task",
                              "--delta-drop", "0.1"])
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "b" / "tada_report.json").read_text())
    assert report["params"]["delta"] == 0.1 and report["params"]["filter_side"] == "task"
    assert "δ = 0.1 (given)" in out.output
    bad = runner.invoke(cli, [*base, "--out", str(tmp_path / "c"), "--delta", "often"])
    assert bad.exit_code == 2 and "expected auto or a number" in bad.output



@pytest.mark.parametrize("method", ["tada", "tsv"])
def test_the_merge_pass_reuses_the_first_pass_components_within_the_budget(wide, monkeypatch, method):
    """The engine keeps the first pass's module inputs (and the SVDs it computed) for the merge
    pass while they fit ``KEEP_BETWEEN_PASSES_BYTES``: every input is decomposed once, and the
    merge is bitwise what streaming every module twice gives (over budget)."""
    import tada.engine as engine
    import tada.methods.base as base

    task, domain, sd, sg = wide
    calls = []
    real = base.thin_svd
    monkeypatch.setattr(base, "thin_svd", lambda lr: calls.append(1) or real(lr))

    def run():
        calls.clear()
        out = tada.merge(task, domain, method=method, domain_stats=sd, general_stats=sg, progress=False)
        return out, len(calls)

    from tada.adapters import load_adapter

    adapters = [load_adapter(task), load_adapter(domain)]
    names = adapters[0].module_names
    need = engine.components_bytes(adapters, names)  # from the headers: every factor's shape
    assert need == sum((m.shape[0] + m.shape[1]) * m.rank * 8 for a in adapters for m in a.modules())
    monkeypatch.setattr(engine, "KEEP_BETWEEN_PASSES_BYTES", need)  # just fits
    kept, n_kept = run()
    monkeypatch.setattr(engine, "KEEP_BETWEEN_PASSES_BYTES", need - 1)  # one byte short: stream again
    streamed, n_streamed = run()
    n_modules = len(kept.report["modules"])
    if method == "tada":  # delta: auto has a first pass; kept, each input is decomposed once
        assert (n_kept, n_streamed) == (2 * n_modules, 4 * n_modules)
    else:  # no first pass: nothing to keep
        assert n_kept == n_streamed
    assert kept.tensors.keys() == streamed.tensors.keys()
    assert all(torch.equal(kept.tensors[k], streamed.tensors[k]) for k in kept.tensors)
