"""Issue #26: the outputs a user reads are readable — `tada inspect`'s α table fits 80 columns,
every table names the adapters by their folders (not ``domain2``), plot-alpha titles each panel
with the merged folder's name."""
from __future__ import annotations

import pytest

import tada

from conftest import random_stats, run_cli, write_adapter
from tada.errors import TadaError  # noqa: E402

DEEP = {f"model.layers.{i}.self_attn.{m}": (16, 16) for i in range(30) for m in ("q_proj", "v_proj", "o_proj")}


@pytest.fixture(scope="module")
def deep_merge(tmp_path_factory):
    """A TaDA merge of a 30-layer pair (the issue's table had one column per layer)."""
    root = tmp_path_factory.mktemp("deep")
    task = write_adapter(root / "task-format", DEEP, r=4, alpha=8, seed=0)
    domain = write_adapter(root / "biomed", DEEP, r=4, alpha=8, seed=1)
    out = root / "merged"
    res = tada.merge(task, domain, domain_stats=random_stats(DEEP, seed=2), general_stats=random_stats(DEEP, seed=3),
                     out=out, progress=False)
    return out, res


def test_inspect_alpha_table_fits_80_columns(deep_merge, capsys, monkeypatch):
    from tada.report.alpha import alpha_grid

    out, res = deep_merge
    monkeypatch.setenv("COLUMNS", "80")
    code, text, err = run_cli(capsys, "inspect", out)
    assert code == 0, err
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide[:3]
    grid = alpha_grid(res.report)
    assert grid["layers"] == list(range(30)) and grid["roles"] == ["query", "value", "attn_out"]
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") >= 4}
    for i, layer in enumerate(grid["layers"]):  # one row per layer holding each role's α
        cells = [c.strip() for c in rows[str(layer)].split("│")[2:-1]]
        assert cells == [f"{grid['alpha'][role][i]:.2f}" for role in grid["roles"]], layer
    assert "against biomed" in text


@pytest.fixture(scope="module")
def named_kway(tmp_path_factory):
    from test_engine_kway import WIDE

    root = tmp_path_factory.mktemp("named")
    task = write_adapter(root / "task-format", WIDE, r=6, alpha=12, seed=30)
    doms = [write_adapter(root / name, WIDE, r=5, alpha=10, seed=31 + i) for i, name in enumerate(("hpo", "go"))]
    res = tada.merge(task, doms, domain_stats=[random_stats(WIDE, seed=40), random_stats(WIDE, seed=41)],
                     general_stats=random_stats(WIDE, seed=50), progress=False, out=root / "merged-k")
    return root / "merged-k", res


def test_every_table_names_the_adapters_by_their_folders(named_kway, capsys, tmp_path):
    from tada.analysis.plots import panel_title, plot_alpha, read_report
    from tada.report.alpha import input_names
    from tada.report.summary import print_summary

    out, res = named_kway
    assert input_names(res.report) == {"task": "task-format", "domain": "hpo", "domain2": "go"}
    print_summary(res)
    err = capsys.readouterr().err
    assert "against hpo" in err and "against go" in err and "domain2" not in err
    code, text, _ = run_cli(capsys, "inspect", out)
    assert code == 0 and "against hpo" in text and "against go" in text and "domain2" not in text
    fig = plot_alpha([read_report(out)], tmp_path / "a.png", [panel_title(out)])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["merged-k, vs hpo (L = 2)", "merged-k, vs go (L = 2)"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "hpo" in card and "go" in card and "domain2" not in card


def test_plot_alpha_titles_panels_with_the_merged_folder(deep_merge, capsys, tmp_path):
    out, _ = deep_merge
    code, _, err = run_cli(capsys, "plot-alpha", out, out / "tada_report.json", "--out", tmp_path / "a.png")
    assert code == 0, err
    from PIL import Image  # noqa: F401  (the files exist and are images)

    svg = (tmp_path / "a.svg").read_text()
    assert svg.count("merged, vs biomed") == 2 or svg.count("merged") >= 2


def eval_record(tmp_path, name: str, accuracy: float, dataset: str, shots: int = 0):
    import json

    from tada.eval.records import cell_record

    class Result:
        n, ci = 20, (0.1, 0.9)

    Result.accuracy = accuracy
    key = {"base": "b", "adapter_sha256": "ab" * 32, "dataset": dataset, "scoring": "letter", "shots": shots}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cell_record(key, Result(), seconds=1.0, dataset=dataset, scoring="letter")))
    return path


def test_card_keeps_what_the_user_wrote_and_accumulates_evaluations(deep_merge, tmp_path, capsys):
    import shutil

    from tada.report.card import BEGIN, END

    out = tmp_path / "m"
    shutil.copytree(deep_merge[0], out)
    card = out / "README.md"
    text = card.read_text()
    assert text.startswith("---\n") and BEGIN in text and text.rstrip().endswith(END)
    # the user adds a front-matter key, a paragraph above and one below the generated part
    head, rest = text[4:].split("\n---\n", 1)
    card.write_text(f"---\n{head}\nlicense: mit\n---\nMy notes above.\n\n{rest}\n## My section\n\nkeep me\n")
    first, second = eval_record(tmp_path, "e1", 0.625, "set-one"), eval_record(tmp_path, "e2", 0.5, "set-two", 3)
    code, _, err = run_cli(capsys, "card", out, "--eval", first)
    assert code == 0, err
    code, _, err = run_cli(capsys, "card", out, "--eval", second)
    assert code == 0, err
    new = card.read_text()
    assert "license: mit" in new and "My notes above." in new and "## My section\n\nkeep me" in new
    assert new.index("My notes above.") < new.index(BEGIN) < new.index(END) < new.index("keep me")
    rows = [line for line in new.splitlines() if line.startswith("| set-")]
    assert [r.split(" | ")[0] for r in rows] == ["| set-one", "| set-two"]  # the first eval's row kept
    assert "0.625" in rows[0] and "0.500" in rows[1]
    inputs = new.split("## Inputs")[1].split("\n## ")[0]
    roles = [line.split(" | ")[0] for line in inputs.splitlines() if line.startswith("| ")][1:]
    assert roles == ["| task", "| domain"]  # the merge's order, not the report's sorted keys
    # the same evaluation again replaces its row; a card with no --eval keeps them all
    code, _, err = run_cli(capsys, "card", out, "--eval", eval_record(tmp_path, "e3", 0.75, "set-one"))
    code, _, err = run_cli(capsys, "card", out)
    rows = [line for line in card.read_text().splitlines() if line.startswith("| set-")]
    assert len(rows) == 2 and "0.750" in rows[0] and "0.500" in rows[1]


def test_card_refuses_a_readme_tada_did_not_write_unless_forced(deep_merge, tmp_path, capsys):
    import shutil

    out = tmp_path / "m"
    shutil.copytree(deep_merge[0], out)
    (out / "README.md").write_text("# My adapter\n\nHand-written.\n")
    code, _, err = run_cli(capsys, "card", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--force" in lines[0], err
    assert (out / "README.md").read_text() == "# My adapter\n\nHand-written.\n"
    code, _, err = run_cli(capsys, "card", out, "--force")
    assert code == 0, err
    text = (out / "README.md").read_text()
    assert "# LoRA adapter merged with tada (tada)" in text and text.rstrip().endswith("Hand-written.")


@pytest.mark.parametrize("rank, advice", [(24, "--max-lora-rank 32"), (100, "--max-lora-rank 128"),
                                          (300, "--max-lora-rank 320"), (600, "cannot serve it")])
def test_check_vllm_names_a_rank_vllm_accepts(tmp_path, capsys, rank, advice):
    """vLLM takes --max-lora-rank only from its list (vllm/config/lora.py MaxLoRARanks): rank 24
    needs 32, not 24; a rank above 512 cannot be served at all."""
    from tada.report.serving import VLLM_MAX_LORA_RANKS, vllm_max_lora_rank

    adapter = write_adapter(tmp_path / "a", {"model.layers.0.self_attn.q_proj": (8, 8)}, r=rank, alpha=rank)
    code, out, _ = run_cli(capsys, "check", adapter)
    assert code == 2 and f"rank {rank}" in out and advice in out, out
    if rank > 512:
        assert "--max-lora-rank 600" not in out and "--max-rank 512" in out
    else:
        assert f"--max-lora-rank {rank} " not in out
    assert VLLM_MAX_LORA_RANKS[-1] == 512 and vllm_max_lora_rank(24) == 32 and vllm_max_lora_rank(513) is None
    code, out, _ = run_cli(capsys, "check", adapter, "--max-lora-rank", "24")
    assert code == 2 and "vLLM accepts only one of 1, 8, 16, 32" in out


def test_probe_stats_and_eval_records_follow_the_umask(tmp_path, tiny_base, capsys, monkeypatch, umask022):
    """`tada probe --out` statistics are meant to be shared, and `tada eval`'s records read by
    others: 0644 under umask 022 (they were 0600), like a merged folder's files."""
    from conftest import write_probe
    from test_eval_lm_eval import toy

    from tada.eval.datasets import write_jsonl

    monkeypatch.chdir(tmp_path)
    probe = write_probe(tmp_path / "p.txt")
    code, _, err = run_cli(capsys, "probe", "--base", tiny_base, "--probe", probe, "--out", "stats.safetensors")
    assert code == 0, err
    data = tmp_path / "q.jsonl"
    write_jsonl(data, toy(4).test)
    code, _, err = run_cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--shots", "0", "--first", "2")
    assert code == 0, err
    written = [tmp_path / "stats.safetensors", *sorted((tmp_path / "tada-eval").iterdir())]
    assert [p.suffix for p in written] == [".safetensors", ".json", ".jsonl"]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: "0o644" for p in written}
    assert oct((tmp_path / "tada-eval").stat().st_mode & 0o777) == "0o755"


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
