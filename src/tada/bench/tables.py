"""The paper's Table 3 layout from benchmark records: one row per method, one column per dataset
plus the average; mean ± std over DARE seeds; the best value per column marked.

The density of TIES/DARE rows is picked on validation sets when the config gives one for every
dataset, else the best on test (the paper's optimistic protocol, marked as such). The whole
density grid is reported too.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field

from pathlib import Path

from ..io.atomic import write_text
from ..methods import row_label
from ..eval.mcq import wilson_interval
from .text import TUNED_SUFFIX, BenchConfig


#: Metrics that are proportions of the n questions (their Wilson interval is computed from them).
PROPORTIONS = ("accuracy", "acc_norm", "acc_norm_bytes", "format_rate", "joint_rate")
#: ``format`` scoring's columns per dataset: (metric, column suffix): compliance, content, and the
#: joint score (in the format and correct; records scored before it existed have no joint column).
FORMAT_COLUMNS = (("format_rate", "format"), ("accuracy", "acc"), ("joint_rate", "joint"))


@dataclass
class Row:
    label: str
    group: str
    values: dict[str, float]  # dataset → mean accuracy
    stds: dict[str, float] = field(default_factory=dict)
    average: float = 0.0
    average_std: float | None = None
    note: str = ""
    n: dict[str, int] = field(default_factory=dict)
    cis: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% Wilson (pooled over seeds)
    density: float | None = None  # TIES/DARE rows: the density the row shows


def setting_text(params: dict) -> str:
    """A merge's parameters in a table note: ``density 0.554, weights 0.755/0.245``."""
    def value(v) -> str:
        if isinstance(v, (list, tuple)):
            return "/".join(value(x) for x in v)
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k.replace('_', ' ')} {value(v)}" for k, v in sorted(params.items()))


def _mean_std(xs: list[float]) -> tuple[float, float | None]:
    if len(xs) == 1:
        return xs[0], None
    return statistics.fmean(xs), statistics.stdev(xs)


def build_rows(records: list[dict], datasets: list[str], methods: list[str], scoring: str,
               validation: dict[str, str] | None = None, metric: str = "accuracy",
               picked: dict[str, float] | None = None) -> tuple[list[Row], list[Row]]:
    """(headline rows, full density-grid rows) for one scoring mode. ``picked`` (method → density,
    chosen on validation sets before the test sets were scored) labels single-density rows."""

    validation, picked = validation or {}, picked or {}
    by_run: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    groups: dict[str, str] = {}
    params: dict[str, dict] = {}
    ns: dict[str, dict[str, int]] = {}
    for r in records:
        if r["scoring"] != scoring:
            continue
        value = r["accuracy"] if metric == "accuracy" else r["metrics"].get(metric, r["accuracy"])
        by_run.setdefault(r["run"], {})[r["dataset"]] = value
        ns.setdefault(r["run"], {})[r["dataset"]] = r["n"]
        share = value if metric in PROPORTIONS else r["accuracy"]  # the interval's proportion
        counts.setdefault(r["run"], {})[r["dataset"]] = (round(share * r["n"]), r["n"])
        groups[r["run"]], params[r["run"]] = r["group"], r.get("params", {})

    def row_for(label: str, group: str, runs: list[str], note: str = "") -> Row:
        vals, stds, cis = {}, {}, {}
        for d in datasets:
            xs = [by_run[k][d] for k in runs if d in by_run.get(k, {})]
            if xs:
                vals[d], s = _mean_std(xs)
                if s is not None:
                    stds[d] = s
                pooled = [counts[k][d] for k in runs if d in counts.get(k, {})]
                cis[d] = wilson_interval(sum(c for c, _ in pooled), sum(n for _, n in pooled))
        per_run_avg = [statistics.fmean(by_run[k][d] for d in datasets) for k in runs
                       if all(d in by_run.get(k, {}) for d in datasets)]
        avg, avg_std = _mean_std(per_run_avg) if per_run_avg else (float("nan"), None)
        return Row(label, group, vals, stds, avg, avg_std, note, ns.get(runs[0], {}), cis)

    headline: list[Row] = []
    full: list[Row] = []
    # rows in the grid's order: base, task, the domain adapter(s) alone, extra rows, the methods,
    # then the rows tuned on validation (``tada tune``), each with its setting
    known = ["base", "task", "domain", *methods]
    tuned = [g for g in dict.fromkeys(groups.values()) if g.endswith(TUNED_SUFFIX) and g not in methods]
    order = list(dict.fromkeys([*(g for g in groups.values() if g not in methods and g not in tuned), *known, *tuned]))
    for group in order:
        runs = [k for k, g in groups.items() if g == group]
        if not runs:
            continue
        if group in tuned:
            row = row_for(row_label(group), group, runs, f"tuned on validation: {setting_text(params[runs[0]])}")
            row.density = params[runs[0]].get("density")
            headline.append(row)
            continue
        densities = sorted({d for k in runs if (d := params[k].get("density")) is not None})
        if not densities:
            headline.append(row_for(row_label(group), group, runs))
            continue
        grid_rows = {d: row_for(f"{row_label(group)} (density {d})", group,
                                [k for k in runs if params[k].get("density") == d]) for d in densities}
        for d, grid_row in grid_rows.items():
            grid_row.density = d
        full.extend(grid_rows.values())
        if group in picked and densities == [picked[group]]:
            best, note = picked[group], "picked on the validation sets before testing"
        elif len(densities) == 1:
            best, note = densities[0], "the only density run (fixed in advance)"
        elif validation and all(d in validation for d in datasets):
            def val_score(d: float) -> float:
                ks = [k for k in runs if params[k].get("density") == d]  # noqa: B023 (called at once)
                return statistics.fmean(by_run[k].get(validation[ds], 0.0) for k in ks for ds in datasets)
            best, note = max(densities, key=val_score), "density picked on validation"
        else:
            best, note = max(densities, key=lambda d: grid_rows[d].average), "best-on-test (optimistic, as in the paper)"
        row = grid_rows[best]
        headline.append(Row(f"{row_label(group)}", group, row.values, row.stds, row.average,
                            row.average_std, f"density {best}: {note}", row.n, row.cis, best))
    return headline, full


def _cell(v: float | None, s: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" + (f" ± {s:.3f}" if s is not None else "")


def best_per_column(rows: list[Row], datasets: list[str]) -> dict[str, float | None]:
    best = {d: max((r.values[d] for r in rows if d in r.values), default=None) for d in datasets}
    best["average"] = max((r.average for r in rows), default=None)
    return best


def to_markdown(rows: list[Row], datasets: list[str], title: str = "", *, ci: bool = False) -> str:
    """A Markdown table; ``ci`` adds each cell's 95% Wilson interval (pooled over DARE seeds)."""
    best = best_per_column(rows, datasets)
    head = ["Method", *datasets, "Ave.", "Note"]
    lines = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(head) + " |",
                                                         "|" + "---|" * len(head)]
    for r in rows:
        cells = []
        for d in datasets:
            text = _cell(r.values.get(d), r.stds.get(d))
            text = f"**{text}**" if d in r.values and r.values[d] == best[d] else text
            if ci and d in r.cis:
                text += " [{:.2f}, {:.2f}]".format(*r.cis[d])
            cells.append(text)
        avg = _cell(r.average, r.average_std)
        cells.append(f"**{avg}**" if r.average == best["average"] else avg)
        lines.append("| " + " | ".join([r.label, *cells, r.note]) + " |")
    n = rows[0].n if rows else {}
    lines.append("")
    lines.append("n per dataset: " + ", ".join(f"{d} {n.get(d, '?')}" for d in datasets) + ". Bold: best per column."
                 + (" Brackets: 95% Wilson interval (DARE rows: pooled over seeds; ± is the std over seeds)." if ci else ""))
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row], datasets: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", *datasets, *[f"{d}_std" for d in datasets], "average", "average_std", "note"])
    for r in rows:
        w.writerow([r.label, *[r.values.get(d, "") for d in datasets], *[r.stds.get(d, "") for d in datasets],
                    r.average, "" if r.average_std is None else r.average_std, r.note])
    return buf.getvalue()


def to_json(rows: list[Row], datasets: list[str]) -> str:
    return json.dumps({"datasets": datasets, "rows": [r.__dict__ for r in rows]}, indent=2, sort_keys=True) + "\n"


def print_rich(rows: list[Row], datasets: list[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    best = best_per_column(rows, datasets)
    table = Table(title=title)
    table.add_column("Method")
    for d in [*datasets, "Ave."]:
        table.add_column(d, justify="right")
    for r in rows:
        cells = [(f"[bold]{_cell(r.values.get(d), r.stds.get(d))}[/]" if r.values.get(d) == best[d]
                  else _cell(r.values.get(d), r.stds.get(d))) for d in datasets]
        avg = _cell(r.average, r.average_std)
        cells.append(f"[bold]{avg}[/]" if r.average == best["average"] else avg)
        table.add_row(r.label, *cells)
    Console().print(table)


def format_rows(records: list[dict], datasets: list[str], methods: list[str],
                validation: dict[str, str] | None = None,
                picked: dict[str, float] | None = None) -> tuple[list[Row], list[Row], list[str]]:
    """``format`` scoring in the Table 3 layout: two columns per dataset, the format-compliance rate
    (``<dataset> format``), the content accuracy inside the format (``<dataset> acc``) and the joint
    score, in the format and correct (``<dataset> joint``, when the records have it); the
    average is the mean content accuracy. Returns (headline rows, density-grid rows, columns).
    Datasets without a format cell (no declared format) are left out."""
    present = [d for d in datasets if any(r["scoring"] == "format" and r["dataset"] == d for r in records)]
    format_records = [r for r in records if r["scoring"] == "format"]
    shown = [(m, s) for m, s in FORMAT_COLUMNS
             if m != "joint_rate" or all("joint_rate" in r.get("metrics", {}) for r in format_records)]
    columns = [f"{d} {suffix}" for d in present for _, suffix in shown]
    parts = {metric: build_rows(records, present, methods, "format", validation, metric, picked)
             for metric, _ in shown}

    other = {suffix: parts[metric][0] + parts[metric][1] for metric, suffix in shown if metric != "accuracy"}

    def merged(acc: list[Row]) -> list[Row]:
        # The rate of the same row: same group and density (the density is picked on content accuracy).
        out = []
        for a in acc:
            same = {s: next(r for r in rows if r.group == a.group and r.density == a.density)
                    for s, rows in other.items()}
            row = Row(a.label, a.group, {}, {}, a.average, a.average_std, a.note, {}, {}, a.density)
            for source, suffix in ((same[s], s) if s != "acc" else (a, s) for _, s in shown):
                for d in present:
                    key = f"{d} {suffix}"
                    if d in source.values:
                        row.values[key] = source.values[d]
                    if d in source.stds:
                        row.stds[key] = source.stds[d]
                    if d in source.cis:
                        row.cis[key] = source.cis[d]
                    if d in source.n:
                        row.n[key] = source.n[d]
            out.append(row)
        return out

    return merged(parts["accuracy"][0]), merged(parts["accuracy"][1]), columns


def write_tables(records: list[dict], cfg: BenchConfig, *, show: bool = True,
                 picked: dict[str, float] | None = None) -> list[Path]:
    """``table.<scoring>.md/.csv/.json`` in the run folder (headline rows, then the density grid)."""
    out, written = Path(cfg.out), []
    for scoring in cfg.scoring:
        if scoring == "format":
            head, full, columns = format_rows(records, cfg.datasets, cfg.methods, cfg.validation, picked)
            title = (f"{cfg.name}: format compliance, content accuracy and joint score (format scoring, {cfg.shots}-shot; "
                     "Ave. = mean content accuracy)")
        else:
            head, full = build_rows(records, cfg.datasets, cfg.methods, scoring, cfg.validation, picked=picked)
            columns, title = cfg.datasets, f"{cfg.name}: accuracy ({scoring} scoring, {cfg.shots}-shot)"
        files = {"md": to_markdown(head, columns, title, ci=True) + "\n"
                 + to_markdown(full, columns, "Density grid", ci=True),
                 "csv": to_csv(head + full, columns), "json": to_json(head + full, columns)}
        for ext, text in files.items():
            path = out / f"table.{scoring}.{ext}"
            write_text(path, text)
            written.append(path)
        if show:
            print_rich(head, columns, title)
    return written
