"""The CLI: each command in-process through ``main`` (exit codes, one-line errors) and a few real
subprocess runs of the console entry point."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tada.probes import ProbeStats

from conftest import dense_delta, random_stats, run_cli, write_adapter, write_probe


cli = run_cli


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
    code, out, err = cli(capsys, "merge", "--config", str(cfg), "--beta", "4", "--summary")
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
      "--density", "0.5"], "has no parameter 'density'"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--method", "ties",
      "--density", "1.5"], "density must be in"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{task}", "--method", "cat"], "exists"),
    (["merge", "--config", "{tmp}/bad.yaml"], "malformed YAML"),
    (["merge", "--config", "{tmp}/unknown.yaml"], "unknown key"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--domain-probe",
      "{tmp}/empty.txt", "--general-probe", "{tmp}/empty.txt", "--base", "{tiny}"], "no inputs"),
    (["merge", "--task", "{task}", "--domain", "{domain}", "--out", "{tmp}/o", "--method", "tada",
      "--domain-probe", "{tmp}/p.txt", "--general-probe", "{tmp}/p.txt"], "--base is needed"),
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


def test_every_command_in_a_subprocess(tmp_path, pair, tiny_base, monkeypatch):
    """probe, merge (tada with stats), inspect, eval and bench --dry-run as a user runs them."""
    import os

    env = {**os.environ, "TADA_CACHE": str(tmp_path / "cache")}

    def tada_cmd(*args, code=0):
        run = subprocess.run([sys.executable, "-m", "tada.cli", *map(str, args)], capture_output=True, text=True,
                             env=env, cwd=tmp_path)
        assert run.returncode == code, run.stderr
        return run

    from conftest import llama_shapes, write_adapter
    from tada.models import load_model, resolve_base

    shapes = llama_shapes(load_model(resolve_base(str(tiny_base))))
    task = write_adapter(tmp_path / "t", shapes, seed=0)
    domain = write_adapter(tmp_path / "d", shapes, seed=1)
    probe = write_probe(tmp_path / "p.txt")
    for name in ("dom", "gen"):
        tada_cmd("probe", "--base", tiny_base, "--probe", probe, "--adapter", task, "--out", tmp_path / f"{name}.st",
                 "--seed", 1 if name == "dom" else 2)
    tada_cmd("merge", "--task", task, "--domain", domain, "--domain-stats", tmp_path / "dom.st", "--general-stats",
             tmp_path / "gen.st", "--out", tmp_path / "m")
    assert "scaling" in tada_cmd("inspect", tmp_path / "m").stdout
    q = tmp_path / "q.jsonl"
    q.write_text('{"question": "the cell", "options": ["gene", "heart"], "answer": "B"}\n'
                 '{"question": "the river", "options": ["city", "king", "war"], "answer": 0}\n')
    out = tada_cmd("eval", "--base", tiny_base, "--adapter", tmp_path / "m", "--dataset", q, "--shots", 1).stdout
    assert "accuracy" in out and "n=2" in out
    assert (tmp_path / "tada-eval" / "q.letter.m.jsonl").is_file()  # named after the adapter folder
    bad = tada_cmd("bench", "--preset", "llama2-7b-medical", "--task", tmp_path / "nope", "--domain", domain,
                   "--dry-run", code=2)
    assert "task adapter" in bad.stdout


@pytest.mark.parametrize("content,match", [
    (None, "unknown dataset"),
    ('{"question": "q", "options": ["a", "b"], "answer": 0}\n{"question": "q2", "options": ["a", "b"]\n', "bad.jsonl:2"),
    ('{"question": "q", "options": ["a", "b"], "answer": "C"}\n', "bad.jsonl:1"),
    ("", "bad.jsonl"),
])
def test_eval_bad_datasets_exit_2(capsys, tmp_path, tiny_base, content, match):
    name = "no_such_dataset"
    if content is not None:
        (tmp_path / "bad.jsonl").write_text(content)
        name = str(tmp_path / "bad.jsonl")
    code, _, err = cli(capsys, "eval", "--base", str(tiny_base), "--dataset", name)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and match in lines[0], err


def test_demo_end_to_end(tmp_path):
    """The README's first command: the shipped example adapters merged on the real SmolLM2 base
    (the measured table on 5 questions per set instead of 40: the suite's time)."""
    run = subprocess.run([sys.executable, "-m", "tada.cli", "demo", "--out", str(tmp_path / "demo"), "--n", "5"],
                         capture_output=True, text=True, env={**__import__("os").environ, "TADA_CACHE": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    head = lines.index("model | format, domain terms | format, general words | content, domain terms | "
                       "content, general words | joint, domain terms | joint, general words")
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in lines[head + 1:head + 6]}
    assert "(n = 5 per set" in run.stdout and "Measuring 5 domain terms the domain adapter was trained on" in run.stdout
    assert "tada tune" in run.stdout  # the one line that says what the table shows and what measures it properly
    assert list(rows) == ["base model", "task adapter", "domain adapter", "merged (TaDA)", "merged (linear)"]
    rate = {who: [float(c.split()[0]) for c in cells] for who, cells in rows.items()}
    assert rate["task adapter"][0] >= 0.9 and rate["base model"][0] <= 0.1  # the format is the task's skill
    report = json.loads((tmp_path / "demo" / "tada_report.json").read_text())
    assert report["method"] == "tada" and report["summary"]["modules"] == 120
    assert report["params"]["delta"] == "auto" and report["calibration"]["delta_drop"] == 0.025


def test_a_repeated_single_valued_option_is_refused(capsys, tmp_path, pair):
    """``--domain A --domain B`` used to merge only B silently (click keeps the last value); a
    repeated ``--domain`` is now K domain adapters (every one merged), any other single-valued
    option given twice is an error."""
    task, domain = pair
    code, _, err = cli(capsys, "merge", "--task", str(task), "--task", str(domain), "--domain", str(domain),
                       "--out", str(tmp_path / "m"), "--method", "cat")
    assert code == 2 and "option --task given more than once" in err and not (tmp_path / "m").exists()
    code, _, err = cli(capsys, "merge", "--task", str(task), "--domain", str(domain), "--domain", str(task),
                       "--out", str(tmp_path / "k"), "--method", "cat", "--quiet")
    assert code == 0, err
    report = json.loads((tmp_path / "k" / "tada_report.json").read_text())
    assert set(report["inputs"]["domains"]) == {"domain", "domain2"}
    code, _, err = cli(capsys, "analyze", "ablation", "--preset", "smollm2-offline", "--out", "a", "--out", "b")
    assert code == 2 and "option --out given more than once" in err  # sub-groups' commands too
    random_stats(seed=1).save(tmp_path / "d.safetensors")
    random_stats(seed=2).save(tmp_path / "g.safetensors")
    code, _, err = cli(capsys, "merge", "--task", str(task), "--domain", str(domain), "--out", str(tmp_path / "t"),
                       "--domain-stats", str(tmp_path / "d.safetensors"), "--general-stats",
                       str(tmp_path / "g.safetensors"), "--tau", "value=1.1", "--tau", "key=0.9", "--quiet")
    assert code == 0, err  # repeatable options stay repeatable
    tau = json.loads((tmp_path / "t" / "tada_report.json").read_text())["params"]["tau"]
    assert tau == {"value": 1.1, "key": 0.9}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_inspect_norms_are_the_dense_norms_in_every_stored_dtype(tmp_path, dtype):
    """`tada inspect` reads the factors with numpy (bfloat16, which numpy lacks, through torch):
    ‖c·B·A‖_F per module as the dense delta computed from the file has it, and the stored dtype."""
    from tada.report.describe import describe

    folder = write_adapter(tmp_path / "a", r=4, alpha=8, seed=3, dtype=dtype)
    info = describe(folder)
    assert info["dtype"] == str(dtype).removeprefix("torch.")
    for m in info["per_module"]:
        want = float(dense_delta(folder, m["name"]).norm())
        assert m["norm"] == pytest.approx(want, rel=1e-9), m["name"]
        assert (m["rank"], m["scaling"]) == (4, 2.0)


def test_json_outputs_and_the_alpha_table_behind_summary(adapters, tmp_path, capsys, tiny_base):
    import json

    task, domain = adapters
    stats = tmp_path / "s.stats.safetensors"
    random_stats().save(stats)
    args = ["merge", "--task", task, "--domain", domain, "--domain-stats", stats, "--general-stats", stats]
    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "a")
    assert code == 0 and "per layer" not in err and "mean α" in err, err  # one-line summary only
    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "b", "--summary")
    assert code == 0 and "per layer and role" in err
    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "c", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["out"] == str(tmp_path / "c") and obj["method"] == "tada" and "alpha_mean" in obj["summary"]
    code, out, _ = run_cli(capsys, "methods", "--json")
    methods = json.loads(out)
    assert methods["tada"]["params"]["delta"]["default"] == "auto" and methods["ties"]["sweeps"] == ["density"]
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "the cell", "options": ["gene", "heart"], "answer": 0}) + "\n")
    code, out, err = run_cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--scoring", "cloze", "--shots", 0, "--json",
                             "--out", tmp_path / "e.jsonl")
    record = json.loads(out)
    assert code == 0 and record["n"] == 1 and record["predictions_path"] == str(tmp_path / "e.jsonl"), err
