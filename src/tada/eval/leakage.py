"""Leakage check: does any evaluation question appear in a training (or probe) file?

Texts are normalized (case-folded, every non-alphanumeric run → one space) and compared as word
n-grams, the contamination test of GPT-3 and lm-evaluation-harness's ``decontaminate`` (13-grams):

* a question **stem** leaks when one of its 13-grams occurs in the training corpus, or, for a stem
  shorter than 13 words, when the whole normalized stem occurs inside a training text;
* an **option** leaks the same way (options of fewer than ``min_option_words`` words, e.g. a
  one-word title, are not checked: they occur everywhere by chance). Sets that ask about trained
  knowledge on purpose (the domain-trained definitions) pass ``check_options=False``: their
  options are training texts by design, their question form is not.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .datasets import MCQ

NGRAM = 13
MIN_OPTION_WORDS = 8
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces (punctuation and symbols dropped)."""
    return _NON_ALNUM.sub(" ", text.casefold()).strip()


def ngrams(words: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Leak:
    dataset: str
    id: str
    field: str  # "question" or "option k"
    evidence: str  # the shared n-gram or the contained text


class Corpus:
    """Normalized training texts with their 13-gram index."""

    def __init__(self, texts: Iterable[str], n: int = NGRAM):
        self.n = n
        self.texts = [normalize(t) for t in texts]
        self.grams: set[tuple[str, ...]] = set()
        for t in self.texts:
            self.grams |= ngrams(t.split(), n)
        self._joined = "\n".join(f" {t} " for t in self.texts)

    def hit(self, text: str) -> str | None:
        """The evidence that ``text`` occurs in the corpus, or None."""
        words = normalize(text).split()
        if not words:
            return None
        if len(words) >= self.n:
            shared = next((g for g in ngrams(words, self.n) if g in self.grams), None)
            return " ".join(shared) if shared else None
        needle = f" {' '.join(words)} "
        return needle.strip() if needle in self._joined else None


def training_texts(path: str | Path) -> list[str]:
    """Every string value of every record of a JSONL file (prompt, answer, text, …), or the lines
    of a plain-text file (probes)."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix != ".jsonl":
        return lines
    texts = []
    for line in lines:
        texts += [v for v in json.loads(line).values() if isinstance(v, str)]
    return texts


def find_leaks(dataset: str, questions: Iterable[MCQ], corpus: Corpus, *, check_options: bool = True,
               min_option_words: int = MIN_OPTION_WORDS) -> list[Leak]:
    """Every stem (and option) of ``questions`` found in ``corpus``."""
    leaks = []
    for q in questions:
        evidence = corpus.hit(q.prompt or q.question)  # a format question's stem is its whole prompt
        if evidence:
            leaks.append(Leak(dataset, q.id, "question", evidence))
        if not check_options:
            continue
        for k, option in enumerate(q.options):
            if len(normalize(option).split()) >= min_option_words and (evidence := corpus.hit(option)):
                leaks.append(Leak(dataset, q.id, f"option {k}", evidence))
    return leaks
