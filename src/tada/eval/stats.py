"""Paired comparison of two models scored on the same questions."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``b`` questions only model 1 got right, ``c`` only model 2.

    Under the null each discordant question is a fair coin, so ``p = 2·P(X ≤ min(b, c))`` with
    ``X ~ Binomial(b + c, 1/2)``, capped at 1 (``p = 1`` when there are no discordant questions).
    """
    if b < 0 or c < 0:
        raise ValueError("counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    """Model 1 vs model 2 on the shared questions: accuracy difference and McNemar p-value."""

    n: int
    only_first: int
    only_second: int
    diff: float  # accuracy(model 1) - accuracy(model 2)
    p: float


def paired(first: Mapping[Any, bool], second: Mapping[Any, bool]) -> Paired:
    """Compare per-question correctness maps (question id → correct) on the ids both have."""
    ids = sorted(set(first) & set(second))
    b = sum(1 for i in ids if first[i] and not second[i])
    c = sum(1 for i in ids if second[i] and not first[i])
    n = len(ids)
    return Paired(n, b, c, (b - c) / n if n else 0.0, mcnemar_exact(b, c))


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given: the i-th smallest of m is multiplied
    by (m − i + 1), made monotone (never below the previous adjusted value) and capped at 1. A
    family's claims at level a are the tests whose adjusted p < a (strong family-wise control)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


#: The per-question measures of a prediction record that a paired test can compare: ``correct``
#: (content / accuracy), ``format_ok`` (format compliance), ``joint`` (both at once).
MEASURES = ("correct", "format_ok", "joint")


def paired_predictions(first: list[Mapping[str, Any]], second: list[Mapping[str, Any]],
                       measure: str = "correct") -> Paired:
    """Exact McNemar on one per-question ``measure`` of two models' prediction records (the
    ``id`` field pairs them): ``correct``, ``format_ok`` or ``joint``."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")

    def as_map(preds: list[Mapping[str, Any]]) -> dict:
        return {p["id"]: bool(p[measure]) for p in preds if measure in p}

    return paired(as_map(first), as_map(second))
