"""tada.bench.config and the bench configurations: presets, sweeps, and the merge options a bench
passes to every merge (validated by the options model)."""
from __future__ import annotations

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


def test_presets_use_sweeps():
    data = preset("smollm2-offline")
    assert data["sweeps"] == {"density": [0.5], "seed": [0]} and "densities" not in data
    cfg = BenchConfig.from_dict({**BASE, "densities": [0.2], "dare_seeds": [3]})  # the older spelling still reads
    assert cfg.sweeps == {"density": [0.2], "seed": [3]}
