"""The CLI: each command in-process through ``main`` (exit codes, one-line errors) and a few real
subprocess runs of the console entry point."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tada.cli import main
from tada.probes import ProbeStats

from conftest import random_stats, write_probe


def cli(capsys, *args) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_merge_linear_and_inspect(capsys, tmp_path, pair):
    task, domain = pair
    code, out, _ = cli(capsys, "merge", "--task", str(task), "--domain", str(domain), "--out",
                       str(tmp_path / "m"), "--method", "linear", "--weights", "0.3,0.7", "--quiet")
    assert code == 0 and "wrote" in out
    report = json.loads((tmp_path / "m" / "tada_report.json").read_text())
    assert report["params"] == {"weights": [0.3, 0.7]}
    code, out, _ = cli(capsys, "inspect", str(tmp_path / "m"), "--json")
    info = json.loads(out)
    assert code == 0 and info["modules"] == 6 and all(m["scaling"] == 1.0 for m in info["per_module"])


def test_merge_tada_from_stats_and_yaml(capsys, tmp_path, pair):
    task, domain = pair
    random_stats(seed=1).save(tmp_path / "d.safetensors")
    random_stats(seed=2).save(tmp_path / "g.safetensors")
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(f"task: {task}\ndomain: {domain}\nmethod: tada\ndomain_stats: d.safetensors\n"
                   f"general_stats: g.safetensors\nout: {tmp_path / 'y'}\nparameters:\n  delta: 0.2\n  tau:\n    value: 1.1\n")
    code, out, err = cli(capsys, "merge", "--config", str(cfg), "--beta", "4")
    assert code == 0, err
    report = json.loads((tmp_path / "y" / "tada_report.json").read_text())
    assert report["params"]["delta"] == 0.2 and report["params"]["beta"] == 4.0
    assert report["params"]["tau"] == {"value": 1.1}
    assert "TaDA task weight" in err  # the α table


def test_probe_then_merge_without_base(capsys, tmp_path, pair, tiny_base, monkeypatch):
    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    probe = write_probe(tmp_path / "p.txt")
    code, out, err = cli(capsys, "probe", "--base", str(tiny_base), "--probe", str(probe), "--out",
                         str(tmp_path / "s.safetensors"), "--target-modules", "q_proj,o_proj")
    assert code == 0, err
    stats = ProbeStats.load(tmp_path / "s.safetensors")
    assert sorted(stats.means)[0] == "model.layers.0.self_attn.o_proj" and len(stats.means) == 4


@pytest.mark.parametrize("args,match", [
    (["merge", "--task", "nope", "--domain", "nope", "--out", "x"], "adapter folder not found"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--method", "magic"], "unknown method"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o"], "needs a domain probe"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--method", "cat",
      "--density", "0.5"], "has no parameter density"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--method", "ties",
      "--density", "1.5"], "density must be in"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{task}", "--method", "cat"], "exists"),
    (["merge", "--config", "{tmp}/bad.yaml"], "malformed YAML"),
    (["merge", "--config", "{tmp}/unknown.yaml"], "unknown key"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--domain-probe",
      "{tmp}/empty.txt", "--general-probe", "{tmp}/empty.txt", "--base", "{tiny}"], "no inputs"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--method", "tada",
      "--domain-probe", "{tmp}/p.txt", "--general-probe", "{tmp}/p.txt"], "needs --base"),
    (["inspect", "{tmp}"], "adapter_config.json"),
    (["probe", "--base", "{tmp}/missing.gguf", "--probe", "x", "--out", "y"], "not found"),
])
def test_user_errors_exit_2_with_one_line(capsys, tmp_path, pair, tiny_base, args, match):
    task, domain = pair
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    (tmp_path / "unknown.yaml").write_text("tasks: x\n")
    (tmp_path / "empty.txt").write_text("\n")
    write_probe(tmp_path / "p.txt")
    fmt = {"task": task, "domain": domain, "tmp": tmp_path, "tiny": tiny_base}
    code, out, err = cli(capsys, *[a.format(**fmt) for a in args])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and match in lines[0], err
    assert "Traceback" not in err


def test_console_script_subprocess(tmp_path, pair):
    task, domain = pair
    run = subprocess.run([sys.executable, "-m", "tada.cli", "merge", "--task", str(task), "--domain",
                          str(domain), "--out", str(tmp_path / "o"), "--method", "ties", "--quiet"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-m", "tada.cli", "merge", "--task", str(task), "--domain",
                          str(domain), "--out", str(tmp_path / "o"), "--method", "ties"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip().startswith("error:") and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "tada.cli", "methods"], capture_output=True, text=True)
    assert run.returncode == 0 and "dare_ties" in run.stdout and "fixed_alpha" in run.stdout
