"""tada analyze: probe size (Table 5), timing (Table 8), ablations / probe mismatch (Tables 6-7)."""
from __future__ import annotations

import json
import statistics

import pytest
import torch
import yaml
from click.testing import CliRunner

from tada.analysis.probe_size import alpha_std, draw, per_input_sums, subset_stats
from tada.cli import cli
from tada.probes import extract_stats
from tada.stopwatch import Stopwatch, step

from conftest import llama_shapes, write_adapter, write_probe
from test_bench_text import toy_jsonl


@pytest.fixture
def setup(tmp_path, tiny_base, monkeypatch):
    from tada.models import load_model, resolve_base

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    config = {"name": "toy", "base": str(tiny_base),
              "task": str(write_adapter(tmp_path / "task", shapes, r=4, alpha=8, seed=0)),
              "domain": str(write_adapter(tmp_path / "domain", shapes, r=4, alpha=8, seed=1)),
              "domain_probe": str(write_probe(tmp_path / "d.txt", n=12, seed=1)),
              "general_probe": str(write_probe(tmp_path / "g.txt", n=12, seed=2)),
              "datasets": [toy_jsonl(tmp_path / "a.jsonl", n=6)], "shots": 0, "limit": None,
              "scoring": ["letter"], "out": str(tmp_path / "run")}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_alpha_std_is_the_mean_over_modules_of_the_sample_std():
    runs = [{"a": 0.1, "b": 0.5}, {"a": 0.3, "b": 0.5}, {"a": 0.2, "b": 0.8}]
    by_hand = (statistics.stdev([0.1, 0.3, 0.2]) + statistics.stdev([0.5, 0.5, 0.8])) / 2
    assert alpha_std(runs) == pytest.approx(by_hand)
    assert alpha_std(runs[:1]) == 0.0


def test_subset_statistics_equal_extracting_the_subset(tmp_path, tiny_base):
    from tada.models import load_model, load_tokenizer, resolve_base

    spec = resolve_base(str(tiny_base))
    model, tok = load_model(spec), load_tokenizer(spec)
    texts = write_probe(tmp_path / "p.txt", n=10).read_text().splitlines()
    modules = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.o_proj"]
    sums = per_input_sums(model, tok, texts, modules)
    idx = draw(len(texts), 4, seed=0, k=1)
    assert idx == draw(len(texts), 4, seed=0, k=1) != draw(len(texts), 4, seed=0, k=2)
    direct = extract_stats(model, tok, [texts[i] for i in idx], modules, progress=False)
    combined = subset_stats(sums, idx)
    for m in modules:
        torch.testing.assert_close(combined.means[m], direct.means[m], rtol=1e-12, atol=1e-14)
    assert combined.meta["tokens"] == direct.meta["tokens"]


def test_stopwatch_times_only_while_active():
    with step("x"):
        pass  # no stopwatch: nothing recorded anywhere
    watch = Stopwatch()
    with watch.active():
        with step("x"):
            pass
        with step("x"):
            pass
    with step("x"):
        pass
    assert list(watch.seconds) == ["x"] and watch.counts == {"x": 2}


def test_stopwatch_accumulates_each_step_and_nothing_outside():
    """Counted on a fake clock that advances one tick per reading: exact, whatever the machine's load."""
    ticks = iter(range(1000))
    watch = Stopwatch(clock=lambda: float(next(ticks)))
    with watch.active():
        for _ in range(2):
            with step("x"):  # reads t, then y reads t+1 and t+2, then x reads t+3: x = 3 ticks, y = 1
                with step("y"):
                    pass
    with step("x"):  # outside: not counted
        pass
    assert watch.counts == {"x": 2, "y": 2}
    assert watch.seconds == {"x": 6.0, "y": 2.0}  # both runs of x with y nested inside, nothing outside


def test_analyze_probe_size_and_timing_cli(setup, tmp_path):
    path, _ = setup
    out = tmp_path / "analysis"
    res = CliRunner().invoke(cli, ["analyze", "probe-size", "--config", str(path), "--out", str(out),
                                   "--sizes", "2,4,12", "--subsets", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "probe_size.json").read_text())["rows"]
    assert [r["N"] for r in rows] == [2, 4, 12]
    assert rows[-1]["mean_std_alpha"] == pytest.approx(0.0, abs=1e-12)  # all 12 inputs every time
    assert rows[0]["mean_std_alpha"] > 0
    assert (out / "probe_size.png").stat().st_size > 1000 and (out / "probe_size.config.json").is_file()
    res = CliRunner().invoke(cli, ["analyze", "timing", "--config", str(path), "--out", str(out),
                                   "--methods", "tada,linear,ties", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = {r["method"]: r for r in json.loads((out / "timing.json").read_text())["rows"]}
    steps = ("load_adapters", "load_base", "probe_extraction", "components", "gating", "merge", "truncation", "write")
    assert set(rows) == {"tada", "linear", "ties"}
    assert set(rows["tada"]) == {"method", "total", *steps}  # every stage named
    for name in steps:
        assert rows["tada"][name] > 0, name  # each stage did work
    for method in ("linear", "ties"):  # no probes, no TaDA-internal steps: its whole computation is "merge"
        assert set(rows[method]) == {"method", "load_adapters", "merge", "write", "total"}, method
        assert all(rows[method][k] > 0 for k in ("load_adapters", "merge", "write")), method
    for method, r in rows.items():  # the parts are disjoint pieces of the total
        parts = sum(v for k, v in r.items() if k not in ("method", "total"))
        assert parts <= r["total"] * (1 + 1e-9), method
    assert rows["tada"]["load_base"] + rows["tada"]["probe_extraction"] < rows["tada"]["total"]


def test_analyze_ablation_and_probe_mismatch_cli(setup, tmp_path):
    path, config = setup
    out = tmp_path / "ablation"
    res = CliRunner().invoke(cli, ["analyze", "ablation", "--config", str(path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "ablation.json").read_text())["rows"]
    assert [r["variant"] for r in rows][:3] == ["full TaDA", "layer-level α", "fixed α = 0.5"] and len(rows) == 11
    assert (out / "ablation.letter.png").stat().st_size > 1000
    reports = {p.parent.name: json.loads(p.read_text()) for p in (out / "runs" / "adapters").glob("*/tada_report.json")}
    assert reports["variant-fixed-0-5"]["params"]["fixed_alpha"] == 0.5
    assert reports["variant-no-filter"]["params"]["no_filter"] is True
    out = tmp_path / "mismatch"
    res = CliRunner().invoke(cli, ["analyze", "probe-mismatch", "--config", str(path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    reports = {p.parent.name: json.loads(p.read_text()) for p in (out / "runs" / "adapters").glob("*/tada_report.json")}
    assert reports["variant-general-text-as-domain-probe"]["probes"]["domain"]["file"] == config["general_probe"]
    assert reports["variant-matched-domain-probe"]["probes"]["domain"]["file"] == config["domain_probe"]
    res = CliRunner().invoke(cli, ["analyze", "probe-mismatch", "--config", str(path), "--out", str(out),
                                   "--mismatch-probe", str(tmp_path / "nope.txt")])
    from tada.errors import TadaError  # main() turns it into one line on stderr and exit 2

    assert isinstance(res.exception, TadaError) and "probe file not found" in str(res.exception)
