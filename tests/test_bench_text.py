"""tada bench on a tiny model: the grid, resume after an interruption, caching, Table 3 rendering."""
from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import torch

import pytest

from tada.eval import mcq
from tada.bench.text import Bench, BenchConfig, dry_run, grid
from tada.errors import TadaError
from tada.bench.results import write_results



def _load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recompute = _load_script("recompute_results")
from tada.bench.tables import build_rows, to_csv, to_markdown

from conftest import llama_shapes, write_adapter, write_probe

GOLDEN = __import__("pathlib").Path(__file__).parent / "golden"


def toy_jsonl(path, n=6, seed=0):
    import random

    words = "the cell gene protein heart brain blood river city king war music".split()
    rng = random.Random(seed)  # every word is in the tiny tokenizer's vocabulary
    lines = [json.dumps({"question": " ".join(rng.choice(words) for _ in range(4)),
                         "options": rng.sample(words, 4), "answer": rng.randrange(4)}) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def cfg(tmp_path, tiny_base, monkeypatch):
    from tada.models import load_model, resolve_base

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    task = write_adapter(tmp_path / "task", shapes, r=4, alpha=8, seed=0)
    domain = write_adapter(tmp_path / "domain", shapes, r=4, alpha=8, seed=1)
    return BenchConfig(name="toy", base=str(tiny_base), task=str(task), domain=str(domain),
                       datasets=[toy_jsonl(tmp_path / "a.jsonl"), toy_jsonl(tmp_path / "b.jsonl", seed=1)],
                       domain_probe=str(write_probe(tmp_path / "d.txt", seed=1)),
                       general_probe=str(write_probe(tmp_path / "g.txt", seed=2)),
                       methods=["linear", "ties", "dare_ties", "tada"], sweeps={"density": [0.5, 0.7], "seed": [0, 1]},
                       shots=1, limit=None, out=str(tmp_path / "run"))


def test_grid_rows(cfg):
    keys = [r.key for r in grid(cfg)]
    assert keys == ["base", "task", "domain", "linear", "ties-d0.5", "ties-d0.7", "dare_ties-d0.5-s0",
                    "dare_ties-d0.5-s1", "dare_ties-d0.7-s0", "dare_ties-d0.7-s1", "tada"]


def test_bench_runs_resumes_and_renders(cfg, monkeypatch):
    calls = []
    real = mcq.evaluate

    def counting(*a, **kw):
        calls.append(1)
        if len(calls) == 5 and not getattr(counting, "interrupted", False):
            counting.interrupted = True
            raise KeyboardInterrupt  # the user hits Ctrl-C in the middle of the grid
        return real(*a, **kw)

    monkeypatch.setattr(mcq, "evaluate", counting)
    with pytest.raises(KeyboardInterrupt):
        Bench(cfg, progress=False).run()
    done_before = len(calls) - 1
    calls.clear()
    records = Bench(cfg, progress=False).run()
    n_cells = 11 * 2
    assert len(records) == n_cells and len(calls) == n_cells - done_before  # nothing computed twice
    calls.clear()
    assert len(Bench(cfg, progress=False).run()) == n_cells and not calls  # everything cached
    head, full = build_rows(records, cfg.datasets, cfg.methods, "letter")
    assert [r.group for r in head] == ["base", "task", "domain", "linear", "ties", "dare_ties", "tada"]
    dare = next(r for r in head if r.group == "dare_ties")
    assert "best-on-test" in dare.note and dare.average_std is not None
    assert len(full) == 4  # ties and dare_ties at two densities
    from tada.bench.tables import write_tables

    files = write_tables(records, cfg, show=False)
    assert [f.name for f in files] == ["table.letter.md", "table.letter.csv", "table.letter.json"]
    assert "Density grid" in files[0].read_text() and "TaDA (ours)" in files[0].read_text()
    # a new method computes only itself
    cfg.methods.append("svd")
    calls.clear()
    Bench(cfg, progress=False).run()
    assert len(calls) == 2


def test_table_markdown_golden():
    records = []
    for run, group, params, accs in [
        ("base", "base", {}, (0.30, 0.50)), ("task", "task", {}, (0.32, 0.60)),
        ("domain", "domain", {}, (0.40, 0.45)), ("linear", "linear", {}, (0.35, 0.55)),
        ("dare_ties-d0.5-s0", "dare_ties", {"density": 0.5, "seed": 0}, (0.36, 0.58)),
        ("dare_ties-d0.5-s1", "dare_ties", {"density": 0.5, "seed": 1}, (0.38, 0.56)),
        ("dare_ties-d0.3-s0", "dare_ties", {"density": 0.3, "seed": 0}, (0.30, 0.50)),
        ("tada", "tada", {}, (0.41, 0.61)),
    ]:
        for d, a in zip(("medmcqa", "sciq"), accs):
            records.append({"run": run, "group": group, "params": params, "dataset": d, "scoring": "letter",
                            "accuracy": a, "n": 500, "metrics": {}})
    head, full = build_rows(records, ["medmcqa", "sciq"], ["linear", "dare_ties", "tada"], "letter")
    md = to_markdown(head, ["medmcqa", "sciq"], "Table 3")
    golden = GOLDEN / "table3.md"
    assert md == golden.read_text()
    assert to_csv(head, ["medmcqa", "sciq"]).splitlines()[0].startswith("method,medmcqa,sciq")


def test_dry_run_reports_unreachable(cfg, tmp_path):
    assert dry_run(cfg) == []
    cfg.task = str(tmp_path / "nope")
    cfg.datasets.append("no_such_dataset")
    problems = dry_run(cfg)
    assert any("task adapter" in p for p in problems) and any("no_such_dataset" in p for p in problems)


def test_density_picked_on_validation_before_testing_and_results_document(cfg, tmp_path, monkeypatch):
    """With ``select_on``, every density is scored on the validation set (first DARE seed only),
    only the picked density reaches the test sets, and the results document is written from the run."""
    from tada.bench.results import BEGIN, END, write_results
    from tada.eval.stats import mcnemar_exact

    val = toy_jsonl(tmp_path / "val.jsonl", n=8, seed=5)
    texts = tmp_path / "texts.txt"
    texts.write_text("the cell gene protein\nthe heart brain blood\n")
    cfg.select_on, cfg.scoring, cfg.report = [val], ["letter", "cloze"], str(tmp_path / "doc" / "results.md")
    cfg.lm_texts, cfg.leakage_train = {"toy texts": str(texts)}, [str(texts)]
    seen = []
    real = mcq.evaluate
    monkeypatch.setattr(mcq, "evaluate",
                        lambda model, tok, ds, **kw: seen.append((ds.name, kw["scoring"])) or real(model, tok, ds, **kw))
    bench = Bench(cfg, progress=False)
    picked, selection = bench.select_densities()
    assert set(picked) == {"ties", "dare_ties"} and all(d in (0.5, 0.7) for d in picked.values())
    assert sorted(r["run"] for r in selection) == ["dare_ties-d0.5-s0", "dare_ties-d0.7-s0", "ties-d0.5", "ties-d0.7"]
    for m, d in picked.items():  # the pick is the best validation accuracy (lowest density on a tie)
        accs = {r["params"]["density"]: r["accuracy"] for r in selection if r["group"] == m}
        assert accs[d] == max(accs.values()) and all(accs[x] < accs[d] for x in accs if x < d)
    seen.clear()
    records = bench.run()
    test_runs = {r["run"] for r in records}
    assert f"ties-d{picked['ties']}" in test_runs and len([k for k in test_runs if k.startswith("ties")]) == 1
    assert {k for k in test_runs if k.startswith("dare")} == {f"dare_ties-d{picked['dare_ties']}-s{s}" for s in (0, 1)}
    assert all(name != "val" for name, _ in seen if _ == "cloze")  # validation is scored in letter mode only
    path = write_results(bench, records, command="tada bench --config toy.yaml", wall_s=12.0)
    text = path.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    for needed in ("tada bench --config toy.yaml", "Each adapter on its own", "toy texts", "Leakage check",
                   "picked on validation", "Table 3 layout: accuracy, letter", "Table 3 layout: accuracy, cloze",
                   "McNemar", "Per-layer α", "![per-layer α]"):
        assert needed in text, needed
    assert "](img/alpha-toy.png)" in text  # a link relative to the document
    # every paired cell carries its Holm-adjusted p over the page's whole family of tests
    import re

    cells = re.findall(r"\(p=([0-9.e-]+), Holm ([0-9.e-]+)\)", text)
    assert cells and all(float(h) >= float(p) for p, h in cells)
    from tada.eval.stats import holm

    assert sorted(float(h) for _, h in cells) == pytest.approx(sorted(holm([float(p) for p, _ in cells])), rel=0.1)
    assert (tmp_path / "doc" / "img" / "alpha-toy.png").is_file()
    # prose around the generated block survives a re-run
    path.write_text("# Mine\n\nintro\n\n" + text[text.index(BEGIN):] + "\ndiscussion stays\n")
    write_results(bench, records, command="again", wall_s=None)
    again = path.read_text()
    assert again.startswith("# Mine\n\nintro") and again.rstrip().endswith("discussion stays") and "`again`" in again
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact(3, 5) == mcnemar_exact(5, 3) == pytest.approx(
        2 * sum(__import__("math").comb(8, i) for i in range(4)) / 256)


def test_merge_key_holds_every_parameter_default_included(pair):
    """A cached merge made under another default (TaDA's δ was 0.1, now auto) must not be reused."""
    from tada.bench.grid import merge_key

    task, domain = (str(p) for p in pair)
    key = merge_key(task, domain, "tada", {}, base="b", probes=[None])
    assert key["params"]["delta"] == "auto" and key["params"]["delta_drop"] == 0.025
    assert key == merge_key(task, domain, "tada", {"delta": "auto"}, base="b", probes=[None])
    assert key != merge_key(task, domain, "tada", {"delta": 0.1}, base="b", probes=[None])
    assert merge_key(task, domain, "ties", {"density": 0.5}, base="b", probes=[None])["params"]["weights"]


def test_a_single_density_is_not_called_best_on_test():
    from tada.bench.tables import build_rows

    records = [{"run": "ties-d0.5", "group": "ties", "params": {"density": 0.5}, "dataset": "d", "scoring": "letter",
                "accuracy": 0.5, "n": 10, "metrics": {}}]
    head, full = build_rows(records, ["d"], ["ties"], "letter")
    assert head[0].note == "density 0.5: the only density run (fixed in advance)" and len(full) == 1


def test_kway_bench_rows_merges_and_table(tmp_path, tiny_base, monkeypatch):
    """K domain adapters in a bench (SPEC §6b): each domain alone, a reference 2-way merge, every
    method merging all K; rows named in the table; the merges keyed by every input."""
    from tada.models import load_model, resolve_base

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    task = write_adapter(tmp_path / "task", shapes, r=4, alpha=8, seed=0)
    doms = [write_adapter(tmp_path / n, shapes, r=4, alpha=8, seed=s) for n, s in (("hpo", 1), ("go", 2), ("joint", 3))]
    probes = [str(write_probe(tmp_path / f"p{i}.txt", seed=i)) for i in range(3)]
    cfg = BenchConfig.from_dict({
        "name": "kway", "base": str(tiny_base), "task": str(task), "datasets": [toy_jsonl(tmp_path / "a.jsonl")],
        "domains": [{"name": "hpo", "adapter": str(doms[0]), "probe": probes[0]},
                    {"name": "go", "adapter": str(doms[1]), "probe": probes[1]}],
        "extra_rows": [{"key": "joint-tada", "label": "joint domain adapter, TaDA 2-way", "method": "tada",
                        "domain": str(doms[2]), "domain_probe": probes[0]}],
        "general_probe": str(write_probe(tmp_path / "g.txt", seed=9)), "methods": ["linear", "tada"],
        "shots": 1, "limit": None, "out": str(tmp_path / "run")})
    assert [r.key for r in grid(cfg)] == ["base", "task", "domain-hpo", "domain-go", "joint-tada", "linear", "tada"]
    bench = Bench(cfg, progress=False)
    records = bench.run()
    report = json.loads((tmp_path / "run" / "adapters" / "tada" / "tada_report.json").read_text())
    assert set(report["inputs"]["domains"]) == {"domain", "domain2"} and set(report["probes"]["domains"]) == {
        "domain", "domain2"}
    joint = json.loads((tmp_path / "run" / "adapters" / "joint-tada" / "tada_report.json").read_text())
    assert "domain" in joint["inputs"] and "domains" not in joint["inputs"]
    head, _ = build_rows(records, cfg.datasets, cfg.methods, "letter")
    assert [r.label for r in head] == ["Base model", "Task only", "Domain only (hpo)", "Domain only (go)",
                                       "joint domain adapter, TaDA 2-way", "Linear", "TaDA (ours)"]
    assert dry_run(cfg) == []
    with pytest.raises(Exception, match="either domain"):
        BenchConfig.from_dict({"name": "x", "base": "b", "task": "t", "domain": "d", "datasets": ["a"],
                               "domains": [{"name": "a", "adapter": "a"}]})


def test_tuned_rows_from_a_leaderboard_and_kway_extra_rows(tmp_path, tiny_base, monkeypatch):
    """Issue #25's fair page: ``tuned:`` (a ``tada tune`` leaderboard) adds one row per method,
    merged with the tuned setting and noted as such; an extra row with a method and no domain
    merges the config's K domains (the natural-choice row, the energy-matched filter control);
    tuned TaDA is compared with the tuned rows only."""
    import safetensors.torch as st
    import tada
    from tada.bench.results import paired_cells
    from tada.models import load_model, resolve_base

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    task = write_adapter(tmp_path / "task", shapes, r=4, alpha=8, seed=0)
    doms = [write_adapter(tmp_path / n, shapes, r=4, alpha=8, seed=s) for n, s in (("hpo", 1), ("go", 2))]
    probes = [str(write_probe(tmp_path / f"p{i}.txt", seed=i)) for i in range(2)]
    board = tmp_path / "leaderboard.json"
    board.write_text(json.dumps({"methods": [
        {"method": "linear", "params": {"weights": [0.6, 0.2, 0.2]}, "setting": {"task_weight": 0.6}, "score": 0.5},
        {"method": "tada", "params": {"tau_scale": 2.0}, "setting": {"tau_scale": 2.0}, "score": 0.6}]}))
    cfg = BenchConfig.from_dict({
        "name": "fair", "base": str(tiny_base), "task": str(task), "datasets": [toy_jsonl(tmp_path / "a.jsonl")],
        "domains": [{"name": "hpo", "adapter": str(doms[0]), "probe": probes[0]},
                    {"name": "go", "adapter": str(doms[1]), "probe": probes[1]}],
        "extra_rows": [{"key": "natural", "label": "Linear 0.5/0.25/0.25", "method": "linear",
                        "params": {"weights": [0.5, 0.25, 0.25]}},
                       {"key": "energy-scale", "label": "TaDA, no filter, adapters scaled (same energy)",
                        "method": "tada", "params": {"energy_control": "scale"}}],
        "general_probe": str(write_probe(tmp_path / "g.txt", seed=9)), "methods": ["tada"], "tuned": str(board),
        "shots": 1, "limit": None, "out": str(tmp_path / "run"), "report": str(tmp_path / "page.md"),
        "records": str(tmp_path / "records.jsonl.gz")})
    assert [r.key for r in grid(cfg)] == ["base", "task", "domain-hpo", "domain-go", "natural", "energy-scale",
                                          "tada", "linear-tuned", "tada-tuned"]
    bench = Bench(cfg, progress=False)
    records = bench.run()
    adapters = tmp_path / "run" / "adapters"
    # each merged row is the merge its setting names, K-way
    for key, method, params in (("linear-tuned", "linear", {"weights": [0.6, 0.2, 0.2]}),
                                ("natural", "linear", {"weights": [0.5, 0.25, 0.25]})):
        want = tada.merge(str(task), [str(d) for d in doms], method=method, params=params,
                          out=str(tmp_path / f"want-{key}"), base=str(tiny_base))
        got = st.load_file(str(adapters / key / "adapter_model.safetensors"))
        ref = st.load_file(str(Path(want.out) / "adapter_model.safetensors"))
        assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in got), key
    tuned = json.loads((adapters / "tada-tuned" / "tada_report.json").read_text())
    assert tuned["params"]["tau_scale"] == 2.0 and set(tuned["inputs"]["domains"]) == {"domain", "domain2"}
    energy = json.loads((adapters / "energy-scale" / "tada_report.json").read_text())
    assert energy["params"]["energy_control"] == "scale"
    head, _ = build_rows(records, cfg.datasets, cfg.methods, "letter")
    assert [r.label for r in head] == ["Base model", "Task only", "Domain only (hpo)", "Domain only (go)",
                                       "Linear 0.5/0.25/0.25", "TaDA, no filter, adapters scaled (same energy)",
                                       "TaDA (ours)", "Linear (tuned)", "TaDA (ours) (tuned)"]
    assert head[-2].note == "tuned on validation: weights 0.6/0.2/0.2"
    assert [label for label, _ in paired_cells(bench, {}, "letter", reference="tada-tuned")] == ["Linear (tuned)"]
    assert len(paired_cells(bench, {}, "letter")) == 8  # TaDA at its defaults against every other row
    # the page's every number recomputed from the committed records by the standalone script
    write_results(bench, records, command="tada bench", wall_s=None)
    page, rec = tmp_path / "page.md", tmp_path / "records.jsonl.gz"
    assert "TaDA (tuned) minus each tuned row" in page.read_text()
    assert recompute.check(str(page), str(rec)) == []
    lines = gzip.decompress(rec.read_bytes()).decode().splitlines()
    first = json.loads(lines[0])
    rows = [json.loads(line) for line in lines]
    flip = next(i for i, r in enumerate(rows) if r["label"] == "Linear (tuned)")
    rows[flip]["correct"] = not rows[flip]["correct"]
    rec.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    problems = recompute.check(str(page), str(rec))
    assert problems and any("Linear (tuned)" in p for p in problems) and first["row"] == "base"
    board.write_text(json.dumps({"methods": [{"method": "nope", "params": {}}]}))
    with pytest.raises(TadaError, match="unknown method"):
        BenchConfig.from_dict({**dataclasses.asdict(cfg), "out": str(tmp_path / "x")})
    board.write_text("{}")
    with pytest.raises(TadaError, match="not a `tada tune` leaderboard"):
        BenchConfig.from_dict({**dataclasses.asdict(cfg), "out": str(tmp_path / "x")})
