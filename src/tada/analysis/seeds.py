"""Training-seed replication: the same rows of a bench scored on adapter pairs trained from other
seeds, summarised over the replicates and compared question by question, pooled over seeds.

Input: per replicate (a label such as ``"seed 2/3"``), the per-question records a bench exports
(``row``, ``set``, ``id`` and the outcomes ``correct`` / ``format_ok`` / ``joint``). Each row's
rate on each set is computed per replicate; the summary is their mean and sample standard
deviation (n − 1). A paired comparison of two rows pools the replicates as strata: the exact
McNemar test on the discordant questions summed over replicates. Under the null hypothesis
(in every stratum, each discordant question favours either row with probability ½) the summed
count of one side is Binomial(total discordant, ½), which is the test of
:func:`tada.eval.stats.mcnemar_exact` on the sums. Holm adjusts the whole family of comparisons.
"""
from __future__ import annotations

import gzip
import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import TadaError
from ..eval.stats import holm, mcnemar_exact, MEASURES, paired


def read_records(path: str | Path) -> list[dict]:
    """The records of a gzip JSON-lines file written by a bench (``records:``)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise TadaError(f"{path}: not a gzip JSON-lines records file ({e})") from None


def outcomes(records: Sequence[Mapping], row: str, set_name: str, measure: str) -> dict[str, bool]:
    """Question id → ``measure`` of ``row`` on ``set_name``."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    return {r["id"]: bool(r[measure]) for r in records
            if r["row"] == row and r["set"] == set_name and measure in r}


def summary_rows(replicates: Mapping[str, Sequence[Mapping]], rows: Sequence[str], sets: Sequence[str],
                 measures: Sequence[str] = MEASURES) -> list[dict]:
    """One dict per (row, set, measure): ``n`` (questions per replicate), ``rates`` (replicate label →
    rate), ``mean`` and ``sd`` (sample standard deviation over replicates; 0 for one replicate).
    Measures no record has are skipped (letter scoring has only ``correct``). A row missing from
    a replicate is a one-line error (every replicate scores the same rows)."""
    present = [m for m in measures if any(m in r for recs in replicates.values() for r in recs)]
    out = []
    for row in rows:
        for set_name in sets:
            for measure in present:
                rates, ns = {}, set()
                for name, records in replicates.items():
                    got = outcomes(records, row, set_name, measure)
                    if not got:
                        raise TadaError(f"replicate {name!r} has no records of row {row!r} on {set_name!r}")
                    rates[name] = sum(got.values()) / len(got)
                    ns.add(len(got))
                values = list(rates.values())
                out.append({"row": row, "set": set_name, "measure": measure, "n": sorted(ns),
                            "rates": rates, "mean": statistics.fmean(values),
                            "sd": statistics.stdev(values) if len(values) > 1 else 0.0})
    return out


def pooled_paired(replicates: Mapping[str, Sequence[Mapping]], first: str, second: str, set_name: str,
                  measure: str = "joint") -> dict:
    """``first`` − ``second`` on ``set_name``, question by question within each replicate and pooled
    over replicates: ``diffs`` (replicate → rate difference on the shared ids), ``mean_diff``,
    ``b`` / ``c`` (questions only ``first`` / only ``second`` got, summed), ``n`` (pairs, summed)
    and ``p`` (exact McNemar on the sums; see the module docstring)."""
    strata = {}
    for name, records in replicates.items():
        strata[name] = paired(outcomes(records, first, set_name, measure), outcomes(records, second, set_name, measure))
        if not strata[name].n:
            raise TadaError(f"replicate {name!r}: rows {first!r} and {second!r} share no question on {set_name!r}")
    b, c, n = (sum(getattr(x, f) for x in strata.values()) for f in ("only_first", "only_second", "n"))
    return {"first": first, "second": second, "set": set_name, "measure": measure,
            "diffs": {name: x.diff for name, x in strata.items()}, "mean_diff": (b - c) / n, "b": b, "c": c, "n": n,
            "p": mcnemar_exact(b, c)}


def comparisons(replicates: Mapping[str, Sequence[Mapping]], pairs: Sequence[tuple[str, str]],
                sets: Sequence[str], measure: str = "joint") -> list[dict]:
    """:func:`pooled_paired` for every (first, second) pair on every set, with ``holm`` (the
    Holm-adjusted p over all of them: one family)."""
    tests = [pooled_paired(replicates, a, b, s, measure) for a, b in pairs for s in sets]
    for test, adjusted in zip(tests, holm([t["p"] for t in tests])):
        test["holm"] = adjusted
    return tests


def to_markdown(summary: list[dict], tests: list[dict], labels: Mapping[str, str], unit: str = "seed pair") -> str:
    """The summary table (mean ± sd over replicates, then each replicate's value) per measure, and
    the pooled comparisons; ``unit`` names one replicate in the prose (``"seed pair"``: a task and a
    domain adapter retrained from other seeds)."""
    names = list(summary[0]["rates"]) if summary else []
    word = unit.split()[-1]  # "pair" of "seed pair"
    sets = list(dict.fromkeys(r["set"] for r in summary))
    titles = {"joint": "joint score (in the format and right)", "format_ok": "format compliance",
              "correct": "content accuracy"}
    lines: list[str] = []
    for measure in [m for m in ("joint", "format_ok", "correct") if any(r["measure"] == m for r in summary)]:
        lines += [f"**{titles[measure]}**: mean ± sd over {len(names)} {unit}s; then each {word} "
                  f"({', '.join(names)})", "", "| row | " + " | ".join(sets) + " |", "|---" * (len(sets) + 1) + "|"]
        for row in dict.fromkeys(r["row"] for r in summary):
            cells = []
            for s in sets:
                r = next(x for x in summary if x["row"] == row and x["set"] == s and x["measure"] == measure)
                cells.append(f"{r['mean']:.3f} ± {r['sd']:.3f} ({' / '.join(f'{v:.3f}' for v in r['rates'].values())})")
            lines.append(f"| {labels.get(row, row)} | " + " | ".join(cells) + " |")
        lines.append("")
    if tests:
        lines += [f"Paired, pooled over the {len(names)} {unit}s ({tests[0]['measure']}): the difference of "
                  f"the pooled rates, each {word}'s difference, the discordant counts summed over {word}s (b: only the "
                  "first row right, c: only the second), the exact McNemar p on the sums and the Holm-adjusted p "
                  f"over these {len(tests)} tests. `*`: Holm p < 0.05.", "",
                  f"| first − second | set | pooled diff | per {word} | b / c (n) | p | Holm p |",
                  "|---|---|---|---|---|---|---|"]
        for t in tests:
            star = "*" if t["holm"] < 0.05 else ""
            lines.append(f"| {labels.get(t['first'], t['first'])} − {labels.get(t['second'], t['second'])} | "
                         f"{t['set']} | {t['mean_diff']:+.3f} | "
                         f"{' / '.join(f'{v:+.3f}' for v in t['diffs'].values())} | {t['b']} / {t['c']} ({t['n']}) | "
                         f"{t['p']:.2g} | {t['holm']:.2g}{star} |")
    return "\n".join(lines) + "\n"


__all__ = ["comparisons", "pooled_paired", "read_records", "summary_rows", "to_markdown"]
