"""Mistakes a new user makes in the first hour, caught with one line (issue #18)."""
from __future__ import annotations

import pytest

import tada
from tada.errors import TadaError

from conftest import random_stats, run_cli, write_adapter


@pytest.fixture
def adapters(tmp_path):
    return write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)


def merge(adapters, **params):
    task, domain = adapters
    return tada.merge(task, domain, params=params, domain_stats=random_stats(), general_stats=random_stats(seed=3),
                      progress=False)


def test_a_tau_typo_is_an_error_with_a_suggestion(adapters):
    with pytest.raises(TadaError, match=r"'atn_out' matches no module.*did you mean attn_out"):
        merge(adapters, tau={"atn_out": 1.5})


def test_a_tau_role_no_module_has_is_an_error(adapters):
    with pytest.raises(TadaError, match=r"'mlp': no module here has that role"):
        merge(adapters, tau={"mlp": 1.5})


def test_valid_tau_overrides_apply(adapters):
    res = merge(adapters, tau={"attn_out": 1.7, r"layers\.1\.": 0.9})
    assert res.report["modules"]["model.layers.0.self_attn.o_proj"]["tau"] == 1.7
    assert res.report["modules"]["model.layers.1.self_attn.q_proj"]["tau"] == 0.9


def test_a_bad_tau_regex_is_one_line(adapters):
    with pytest.raises(TadaError, match="not a valid regular expression"):
        merge(adapters, tau={"layers.(": 1.0})


def test_cli_tau_typo_exits_2_with_one_line(adapters, tmp_path, capsys):
    task, domain = adapters
    stats = tmp_path / "s.stats.safetensors"
    random_stats().save(stats)
    code, _, err = run_cli(capsys, "merge", "--task", task, "--domain", domain, "--domain-stats", stats,
                           "--general-stats", stats, "--tau", "atn_out=1.5", "--out", tmp_path / "m")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--tau" in lines[0] and "did you mean attn_out" in lines[0], err
    assert not (tmp_path / "m").exists()
