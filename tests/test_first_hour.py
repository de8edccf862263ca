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


def test_export_base_writes_a_plain_transformers_folder(tmp_path, tiny_base, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from tada.models import load_model, resolve_base

    code, out, err = run_cli(capsys, "export-base", tmp_path / "exp", "--base", tiny_base)
    assert code == 0, err
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "exp")
    original = load_model(resolve_base(str(tiny_base)))
    x = torch.randint(0, 60, (1, 6))
    with torch.no_grad():
        assert torch.equal(exported(x).logits, original(x).logits)
    assert all(p.stat().st_mode & 0o777 in (0o644, 0o755) for p in [tmp_path / "exp", *(tmp_path / "exp").iterdir()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # nothing left beside it
    code, _, err = run_cli(capsys, "export-base", tmp_path / "exp", "--base", tiny_base)
    assert code == 2 and "--force" in err
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    code, _, err = run_cli(capsys, "export-base", notes, "--base", tiny_base, "--force")
    assert code == 2 and "not a model folder" in err and (notes / "todo.txt").read_text() == "mine"


def test_export_base_drops_the_gguf_quantization_config(tmp_path, tiny_base, monkeypatch):
    """A base read from GGUF carries ``quantization_config: {quant_method: gguf}``; the export is a
    plain transformers folder, which lm-eval's ``--model hf`` refuses otherwise (issue #26)."""
    import json

    import tada.api.evaluating as evaluating
    from tada.models import load_model

    def gguf_like(spec, **kw):
        model = load_model(spec, **kw)
        model.config.quantization_config = {"quant_method": "gguf"}
        return model

    monkeypatch.setattr(evaluating, "load_model", gguf_like)
    evaluating.export_base(tmp_path / "exp", base=str(tiny_base))
    config = json.loads((tmp_path / "exp" / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"


@pytest.mark.slow
def test_export_of_the_embedded_gguf_gives_the_same_logits(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from tada.api import export_base
    from tada.models import load_model, smollm2_gguf

    export_base(tmp_path / "smollm2")
    x = torch.tensor([[1, 504, 3546, 29, 1311]])
    with torch.no_grad():
        a = load_model(smollm2_gguf())(x).logits
        b = AutoModelForCausalLM.from_pretrained(tmp_path / "smollm2")(x).logits
    assert torch.equal(a, b)


def test_embedded_base_is_the_default_for_probes(adapters, monkeypatch):
    """No `base` with probe files: the embedded SmolLM2 when the adapters name it (silently) or name
    nothing (with a note); an adapter naming another model needs `base` (one line)."""
    import warnings

    from tada.models import default_base, resolve_base, smollm2_gguf

    embedded = smollm2_gguf()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert default_base([embedded.name]) == embedded
    with pytest.warns(UserWarning, match="no --base given|no `base` given"):
        assert default_base([None]) == embedded
    with pytest.raises(TadaError, match="`base` is needed.*meta-llama"):
        default_base(["meta-llama/Llama-2-7b-hf"])
    assert resolve_base("smollm2") == embedded


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


def test_max_rank_caps_exact_methods_and_tada_check_says_what_vllm_refuses(tmp_path, capsys):
    import json

    from conftest import dense_delta, merged_delta
    import reference as ref

    shapes = {f"model.layers.{i}.self_attn.{m}": (64, 48) for i in range(2) for m in ("q_proj", "o_proj")}
    task = write_adapter(tmp_path / "t", shapes, r=12, seed=1)
    domain = write_adapter(tmp_path / "d", shapes, r=12, seed=2)
    code, out, err = run_cli(capsys, "merge", "--task", task, "--domain", domain, "--method", "cat",
                             "--out", tmp_path / "cat", "--quiet")
    assert code == 0, err
    code, out, err = run_cli(capsys, "check", tmp_path / "cat")  # rank 24 > vLLM's default 16
    assert code == 2 and "rank 24" in out and "--max-rank 16" in out
    code, out, err = run_cli(capsys, "check", tmp_path / "cat", "--max-lora-rank", "32")
    assert code == 0 and "loads it as it is" in out
    res = tada.merge(task, domain, method="cat", max_rank=16, out=tmp_path / "capped", progress=False)
    name = "model.layers.0.self_attn.q_proj"
    want = ref.truncate(dense_delta(task, name) + dense_delta(domain, name), 16)
    assert float((merged_delta(res.tensors, name) - want).norm() / want.norm()) <= 1e-6
    entry = res.report["modules"][name]
    assert entry["rank"] == 16 and 0 < entry["max_rank_rel_error"] < 1
    assert res.report["summary"]["max_rank_capped_modules"] == len(res.report["modules"])
    assert json.loads((tmp_path / "capped" / "adapter_config.json").read_text())["r"] == 16
    code, out, _ = run_cli(capsys, "check", tmp_path / "capped")
    assert code == 0, out
    with pytest.raises(TadaError, match="`rank` 20 is above `max_rank` 16"):
        tada.merge(task, domain, method="svd", rank=20, max_rank=16, progress=False)


def test_unknown_names_suggest_the_closest(adapters, capsys):
    task, domain = adapters
    with pytest.raises(TadaError, match="unknown method 'tiess' \\(did you mean ties\\?\\)"):
        tada.merge(task, domain, method="tiess", progress=False)
    code, _, err = run_cli(capsys, "merge", "--task", task, "--domain", domain, "--dlta", "0.1", "--out", "x")
    assert code == 2 and "--dlta" in err and "'--delta'" in err
    code, _, err = run_cli(capsys, "bench", "--preset", "smollm2-ofline")
    assert code == 2 and "unknown preset" in err and "did you mean smollm2-offline" in err
