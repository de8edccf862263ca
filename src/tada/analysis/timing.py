"""Table 8: wall time of each step of a merge, for TaDA and every baseline, in one run.

Steps: ``load_adapters`` (open and validate both adapters), ``load_base`` and ``probe_extraction``
(TaDA only; probes are computed on the model, the cache is bypassed), ``components`` (thin SVD of
each ΔW, Eq. 4), ``gating`` (Eqs. 1–3, 5–6), ``merge`` (Eq. 7; for a baseline: its whole
per-module computation), ``truncation`` (Eq. 8) and ``write`` (the atomic adapter write).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..api.merging import merge
from ..methods import get_method
from ..stopwatch import Stopwatch

STEPS = ("load_adapters", "load_base", "probe_extraction", "components", "gating", "merge", "truncation", "write")


def time_methods(task: str, domain: str, methods: list[str], *, base: str | None, gguf_file: str | None,
                 domain_probe: str | None, general_probe: str | None, params: dict[str, dict] | None = None,
                 device: str = "cpu", progress: bool = True) -> list[dict]:
    """One merge per method, each step timed; returns ``[{"method", step: seconds, …, "total"}]``."""

    rows = []
    with tempfile.TemporaryDirectory(prefix="tada-timing-") as tmp:
        for method in methods:
            watch = Stopwatch()
            probes = get_method(method).needs_probes
            with watch.active():
                result = merge(task, domain, method=method, params=(params or {}).get(method),
                               base=base if probes else None, gguf_file=gguf_file,
                               domain_probe=domain_probe if probes else None,
                               general_probe=general_probe if probes else None,
                               device=device, use_cache=False, out=Path(tmp) / method, progress=progress)
            t, w = result.timings, watch.seconds
            row: dict[str, Any] = {"method": method, "load_adapters": t["load_adapters"], "write": t["write"]}
            if probes:
                row["load_base"] = w.get("load_base", 0.0)
                row["probe_extraction"] = t["probes"] - row["load_base"]
            inner: dict[str, float] = {k: w[k] for k in ("components", "gating", "merge", "truncation") if k in w}
            row.update(inner)
            if not inner:
                row["merge"] = t["merge"]
            row["total"] = sum(t.values())
            rows.append(row)
    return rows


def to_markdown(rows: list[dict]) -> str:
    steps = [s for s in STEPS if any(s in r for r in rows)]
    lines = ["| method | " + " | ".join(steps) + " | total |", "|---" * (len(steps) + 2) + "|"]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(f"{r[s]:.3f}" if s in r else "–" for s in steps)
                     + f" | {r['total']:.3f} |")
    return "\n".join(lines) + "\n\nSeconds, one run each. `–`: the method has no such step.\n"
