"""tada.bench.config and the bench configurations: presets, sweeps, and the merge options a bench
passes to every merge (validated by the options model)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tada.bench.config import preset
from tada.bench.grid import merge_key
from tada.bench.text import BenchConfig
from tada.bench.vision import VisionBenchConfig
from tada.errors import TadaError

BASE = {"name": "n", "base": "b", "task": "t", "domain": "d", "datasets": ["x"]}


def test_merge_options_are_checked_by_the_options_model():
    cfg = BenchConfig.from_dict({**BASE, "merge_options": {"probe_n": 16, "max_rank": 8}})
    assert cfg.merge_options == {"probe_n": 16, "max_rank": 8}
    for options, message in (({"probe_m": 16}, "has no option 'probe_m' \\(did you mean probe_n\\?\\)"),
                             ({"probe_site": "layer"}, "probe_site must be one of module-input, layer-hidden"),
                             ({"base": "x"}, "merge_options.base is set by the bench itself")):
        with pytest.raises(TadaError, match=message):
            BenchConfig.from_dict({**BASE, "merge_options": options}, "bench.yaml")
    with pytest.raises(TadaError, match="merge_options.out is set by the bench"):
        VisionBenchConfig.from_dict({"name": "v", "base": "b", "datasets": ["x"], "merge_options": {"out": "o"}})


def test_merge_options_enter_the_cache_key_only_when_set(tmp_path):
    (tmp_path / "t").mkdir()
    plain = merge_key(str(tmp_path / "t"), str(tmp_path / "t"), "linear", None, base="b", probes=[])
    assert "merge_options" not in plain  # the keys of every cached bench cell stay as they were
    assert merge_key(str(tmp_path / "t"), str(tmp_path / "t"), "linear", None, base="b", probes=[], merge_options={})\
        == plain
    tuned = merge_key(str(tmp_path / "t"), str(tmp_path / "t"), "linear", None, base="b", probes=[],
                      merge_options={"max_rank": 8})
    assert tuned["merge_options"] == {"max_rank": 8} and tuned != plain


@pytest.mark.parametrize("name", ["smollm2-offline", "smollm2-multidomain"])
def test_the_published_presets_follow_the_fair_protocol(name):
    """Issue #25: TaDA at its defaults, and every registered method tuned on validation by `tada
    tune` (the committed leaderboard, the same budget for each), in float32 as the tune ran."""
    from tada.methods import bench_methods

    data = preset(name)
    assert data["methods"] == ["tada"] and data["model_dtype"] == "float32" and "densities" not in data
    cfg = BenchConfig.from_dict(data)
    tuned = cfg.tuned_rows()
    assert set(bench_methods()) <= {r["method"] for r in tuned}  # every row of the grid, and cat
    board = json.loads(Path(data["tuned"]).read_text())
    assert len({m["trials_used"] for m in board["methods"]}) == 1, "every method gets the same budget"
    assert data["records"].endswith(".jsonl.gz") and data["report"].endswith(".md")


def test_sweeps_and_their_older_spelling():
    cfg = BenchConfig.from_dict({**BASE, "densities": [0.2], "dare_seeds": [3]})  # the older spelling still reads
    assert cfg.sweeps == {"density": [0.2], "seed": [3]}
