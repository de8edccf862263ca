"""Table 5: how much does the per-module α depend on which N probe inputs were drawn?

For each N, ``subsets`` random subsets of N domain and N general probe inputs (without
replacement, ``random.Random(f"{seed}-{N}-{k}")``) give probe statistics, a TaDA merge each, and
the module α of Eq. 3. The statistic is the mean over modules of the sample standard deviation
(n − 1) of α across the subsets. Each probe input is run through the model once: its token sums
are kept, and a subset's statistics are the sum of its inputs' sums over their token count,
exactly what :func:`tada.probes.extract_stats` gives for that subset.
"""
from __future__ import annotations

import random
import statistics

import torch

from .._util import PROGRESS_DELAY_S
from ..api.merging import merge
from ..probes import extract_stats, ProbeStats


def per_input_sums(model, tokenizer, texts: list[str], modules: list[str], *,
                   max_length: int = 256) -> list[tuple[dict[str, torch.Tensor], int]]:
    """For each text: (module → float64 token sum of its inputs, content-token count)."""
    out = []
    for text in texts:
        stats = extract_stats(model, tokenizer, [text], modules, max_length=max_length, progress=False)
        count = stats.meta["tokens"]
        out.append(({m: v * count for m, v in stats.means.items()}, count))
    return out


def subset_stats(sums: list[tuple[dict[str, torch.Tensor], int]], idx: list[int]) -> ProbeStats:
    """Probe statistics of the inputs ``idx`` (added in the given order)."""
    count = sum(sums[i][1] for i in idx)
    means = {m: sum((sums[i][0][m] for i in idx[1:]), sums[idx[0]][0][m].clone()) / count for m in sums[idx[0]][0]}
    return ProbeStats(means, {"tokens": count, "inputs": len(idx)})


def draw(n_items: int, size: int, seed: int, k: int) -> list[int]:
    return sorted(random.Random(f"{seed}-{size}-{k}").sample(range(n_items), size))


def alpha_std(alphas: list[dict[str, float]]) -> float:
    """Mean over modules of the sample std of α across runs (0 with fewer than 2 runs)."""
    if len(alphas) < 2:
        return 0.0
    return statistics.fmean(statistics.stdev(a[m] for a in alphas) for m in alphas[0])


def probe_size_table(task, domain, domain_sums, general_sums, sizes: list[int], subsets: int, seed: int,
                     progress: bool = True) -> list[dict]:
    """``[{"N", "subsets", "mean_std_alpha", "mean_alpha"}]``; the merges run without writing."""
    from tqdm.auto import tqdm

    rows = []
    for size in tqdm(sizes, desc="probe size", unit="N", disable=not progress, delay=PROGRESS_DELAY_S):
        usable = min(size, len(domain_sums), len(general_sums))
        alphas = []
        for k in range(subsets):
            d = subset_stats(domain_sums, draw(len(domain_sums), usable, seed, k))
            g = subset_stats(general_sums, draw(len(general_sums), usable, seed + 1, k))
            report = merge(task, domain, method="tada", domain_stats=d, general_stats=g, progress=False).report
            alphas.append({m: e["alpha"] for m, e in report["modules"].items() if isinstance(e.get("alpha"), float)})
        rows.append({"N": usable, "subsets": subsets, "mean_std_alpha": alpha_std(alphas),
                     "mean_alpha": statistics.fmean(statistics.fmean(a.values()) for a in alphas)})
    return rows
