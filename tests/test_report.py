"""tada.report: the summary (with the method's own hook) and load(), the one validated reader of
tada_report.json that every reader (inspect, plot-alpha, the results pages) goes through."""
from __future__ import annotations

import json

import pytest

import tada
from tada.errors import TadaError
from tada.report import REPORT_NAME, load, summarize

from conftest import write_adapter


def test_load_reads_a_merged_folder_or_its_report(tmp_path):
    task, domain = write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)
    out = tmp_path / "m"
    tada.merge(task, domain, method="linear", out=out, progress=False)
    assert load(out) == load(out / REPORT_NAME) == json.loads((out / REPORT_NAME).read_text())


@pytest.mark.parametrize("report, message", [
    ({"report_version": 99}, "not a tada report of version 1"),
    ({"report_version": 1, "method": "x", "inputs": {}, "modules": [], "summary": {}}, "`modules` missing or not a dict"),
    ({"report_version": 1, "method": "x", "inputs": {}, "summary": {}}, "`modules` missing"),
    ({"report_version": 1, "method": "x", "inputs": {}, "modules": {"m": 3}, "summary": {}}, "a module entry is not"),
])
def test_load_refuses_what_is_not_a_report_in_one_line(tmp_path, report, message):
    path = tmp_path / REPORT_NAME
    path.write_text(json.dumps(report))
    with pytest.raises(TadaError, match=message) as info:
        load(tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(TadaError, match="merge report .* not found"):
        load(tmp_path / "nothing")


def test_every_report_reader_goes_through_load(tmp_path):
    """inspect and plot-alpha refuse a malformed report with load()'s message."""
    from tada.analysis.plots import read_report
    from tada.report.describe import merge_alpha

    (tmp_path / REPORT_NAME).write_text(json.dumps({"report_version": 1, "method": "tada", "inputs": {}, "modules": {},
                                                    "summary": []}))
    for reader in (read_report, lambda p: merge_alpha(p / REPORT_NAME)):
        with pytest.raises(TadaError, match="`summary` missing or not a dict"):
            reader(tmp_path)


def test_the_summary_takes_the_methods_own_part():
    modules = {"a": {"rel_error": 0.1, "alpha": 0.25}, "b": {"rel_error": 0.3, "notes": ["x"], "alpha": 0.75}}
    assert summarize(modules) == {"modules": 2, "rel_error_max": 0.3, "rel_error_mean": pytest.approx(0.2),
                                  "modules_with_notes": 1}  # α belongs to TaDA's hook, not to every method
    from tada.methods import REGISTRY

    tada_summary = summarize(modules, REGISTRY["tada"].summarize)
    assert tada_summary["alpha_mean"] == 0.5 and tada_summary["task_dominant_fraction"] == 0.5
    assert REGISTRY["linear"].summarize is None
