"""The one multiple-choice prompt format used for training data, probes and evaluation.

``format_mcq("Which is a fruit?", ["Stone", "Apple"])`` gives exactly::

    Question: Which is a fruit?
    A. Stone
    B. Apple
    Answer:

with nothing (no space, no newline) after ``Answer:``. The target completion is a space and
the option's letter, e.g. ``" B"``; :func:`answer_for` builds it.
"""
from __future__ import annotations

from ..errors import TadaError

LETTERS = "ABCDEFGHIJ"


def format_mcq(question: str, options: list[str]) -> str:
    """The prompt for ``question`` with lettered ``options`` (2 to 10 of them), ending in ``Answer:``."""
    if not 2 <= len(options) <= len(LETTERS):
        raise TadaError(f"a multiple-choice question needs 2 to {len(LETTERS)} options, got {len(options)}")
    lines = [f"Question: {question}"]
    lines += [f"{letter}. {option}" for letter, option in zip(LETTERS, options)]
    lines.append("Answer:")
    return "\n".join(lines)


def answer_for(index: int) -> str:
    """The target completion for the option at ``index``: ``0`` → ``" A"``."""
    return " " + LETTERS[index]
