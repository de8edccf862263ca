"""Probe statistics h^(ℓ,m)(P): mean inputs of each adapted module on a probe set (paper §3.1, SPEC §4).

A probe is N inputs (default 32, drawn with ``random.Random(seed).sample`` when the file has
more). Forward pre-hooks on the base model's target modules (adapters not applied) sum the
module inputs over every *content* token (attention mask 1, not a special token) in float64;
the mean weights all tokens equally. Only the d_in mean vector per module is kept.

Statistics are written to / read from a safetensors file (``tada probe --out``) and cached on
disk keyed by base model, probe file hash, N, seed, max length and site, so a second merge with
the same probes never runs the model again.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ._util import PROGRESS_DELAY_S, cache_root
from .errors import TadaError
from .io.atomic import atomic_file
from .io.files import read_probe_items
from .roles import layer_of

SITES = ("module-input", "layer-hidden")


@dataclass(frozen=True)
class ProbeSet:
    """The N inputs drawn from a probe file, and where they came from."""

    path: str
    sha256: str
    items: list[str]
    n_in_file: int
    seed: int


def read_probe(path: str | os.PathLike, n: int = 32, seed: int = 42) -> ProbeSet:
    """Read a ``.txt`` (one input per non-empty line) or ``.jsonl`` (``text`` field) probe file.

    More than ``n`` items: ``random.Random(seed).sample(items, n)``; fewer: all, with a warning.
    """
    p = Path(path)
    items, raw = read_probe_items(path)
    if len(items) > n:
        chosen = random.Random(seed).sample(items, n)
    else:
        if len(items) < n:
            warnings.warn(f"{path}: only {len(items)} probe inputs (< N={n}); using all of them", stacklevel=2)
        chosen = list(items)
    return ProbeSet(str(p), hashlib.sha256(raw).hexdigest(), chosen, len(items), seed)


@dataclass
class ProbeStats:
    """Per-module mean input vectors (float64, length d_in) and how they were computed."""

    means: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics to a safetensors file, atomically (mode from the umask)."""
        with atomic_file(path) as tmp:
            save_file({k: v.contiguous() for k, v in sorted(self.means.items())}, str(tmp),
                      metadata={"tada_probe_stats": json.dumps(self.meta, sort_keys=True)})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ProbeStats:
        p = Path(path)
        if not p.is_file():
            raise TadaError(f"probe statistics file not found: {path}")
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("tada_probe_stats", "null"))
                means = {k: f.get_tensor(k).to(torch.float64) for k in f.keys()}
        except Exception as exc:
            raise TadaError(f"{path}: not a probe statistics file ({str(exc).splitlines()[0][:120]})") from None
        if meta is None:
            raise TadaError(f"{path}: not a probe statistics file written by `tada probe`")
        return cls(means, meta)


def find_modules(model: torch.nn.Module, names: list[str]) -> dict[str, torch.nn.Module]:
    """Map adapter module names to the base model's modules (exact name, else a unique suffix match)."""
    named = dict(model.named_modules())
    found, missing = {}, []
    for name in names:
        if name in named:
            found[name] = named[name]
            continue
        tails = [k for k in named if k.endswith("." + name) or name.endswith("." + k)]
        if len(tails) == 1:
            found[name] = named[tails[0]]
        else:
            missing.append(name)
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise TadaError(f"the base model has no module named {', '.join(missing[:3])}{more}: "
                        "was the adapter trained on this base?")
    return found


def content_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int]) -> torch.Tensor:
    """Tokens that count in the mean: attention mask 1 and not a special token (BOS/EOS/pad…)."""
    special = torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    return attention_mask.bool() & ~torch.isin(input_ids, special)


class InputSums:
    """Forward pre-hooks that sum each module's input over selected tokens, one input at a time.

    ``select(name, x)`` turns a module's input ``x`` [1, T, d_in] into a float64 [d_in] sum over
    the tokens that count (text: content tokens; images: patch tokens). After each forward,
    :meth:`add` adds those per-input sums to the running totals in input order (``current`` may be
    replaced first, as the ``layer-hidden`` site does), so totals do not depend on batching. Used
    as a context manager: the hooks are removed on exit, whatever happens.
    """

    def __init__(self, model, module_names: list[str], select):
        self.modules = find_modules(model, module_names)
        self.names = list(module_names)
        self.select = select
        self.current: dict[str, torch.Tensor] = {}
        self.totals: dict[str, torch.Tensor | None] = {n: None for n in self.names}
        self._handles: list = []

    def __enter__(self) -> InputSums:
        def hook_for(name: str):
            def hook(_module, args, kwargs=None):
                x = args[0] if args else next(iter(kwargs.values()))
                self.current[name] = self.select(name, x)
            return hook

        self._handles = [mod.register_forward_pre_hook(hook_for(n)) for n, mod in self.modules.items()]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()

    def add(self) -> None:
        """Add the last forward's per-input sums to the totals (in order) and forget them."""
        for name in self.names:
            row, total = self.current[name].cpu(), self.totals[name]
            self.totals[name] = row if total is None else total + row
        self.current.clear()

    def means(self, count: int) -> dict[str, torch.Tensor]:
        """Totals divided by the number of tokens that were summed."""
        return {n: s / count for n, s in self.totals.items()}  # type: ignore[operator,misc]


@torch.inference_mode()
def extract_stats(model, tokenizer, texts: list[str], module_names: list[str], *,
                  batch_size: int = 8, max_length: int = 256, site: str = "module-input",
                  max_tokens: int | None = None, progress: bool = True) -> ProbeStats:
    """Mean module inputs over the content tokens of ``texts`` (SPEC §4).

    Returns one float64 vector of length d_in per module. Every input runs through the model on
    its own, unpadded (``batch_size`` only sets how many are tokenized at a time), its token sum
    is taken in float64 and the sums are added in input order: the statistics are byte-identical
    whatever the batch size (a padded batch changes the model's float32 rounding). Probes are a
    few dozen short texts, so the batch-1 forwards cost little. ``site="layer-hidden"``: the
    paper-literal reading, the layer's input hidden state for modules whose d_in equals the
    hidden size. ``max_tokens``: a budget on the tokens run through the model (inputs are taken
    in order; the one that crosses the budget is cut, the rest are skipped) — a time control
    for large probes on large models; the statistics record the tokens actually used.
    """
    if max_tokens is not None and max_tokens < 1:
        raise TadaError(f"max_tokens must be ≥ 1, got {max_tokens}")
    if site not in SITES:
        raise TadaError(f"unknown probe site {site!r}; choose one of {SITES}")
    special_ids = list(tokenizer.all_special_ids)
    count = 0
    budget = max_tokens if max_tokens is not None else float("inf")
    used_inputs = 0
    mask_holder: dict[str, torch.Tensor] = {}

    def content_sum(_name: str, x: torch.Tensor) -> torch.Tensor:
        return (x.to(torch.float64) * mask_holder["mask"].unsqueeze(-1)).sum(dim=1)[0]  # d_in

    device = next(model.parameters()).device
    hidden_size = getattr(getattr(model, "config", None), "hidden_size", None)
    from tqdm.auto import tqdm

    with InputSums(model, module_names, content_sum) as sums:
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc="probe", unit="batch", disable=not progress, delay=PROGRESS_DELAY_S, leave=False):
            enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length)
            for row_ids in enc["input_ids"]:
                if budget <= 0:
                    break
                row_ids = row_ids[:int(min(len(row_ids), budget))]
                budget -= len(row_ids)
                used_inputs += 1
                ids = torch.tensor([row_ids], device=device)
                att = torch.ones_like(ids)
                mask = content_mask(ids, att, special_ids).to(torch.float64)
                mask_holder["mask"] = mask
                out = model(input_ids=ids, attention_mask=att, output_hidden_states=(site == "layer-hidden"),
                            use_cache=False)
                if site == "layer-hidden":
                    for name in module_names:
                        layer = layer_of(name)
                        if layer is not None and sums.current[name].shape[-1] == hidden_size:
                            h = out.hidden_states[layer].to(torch.float64)
                            sums.current[name] = (h * mask.unsqueeze(-1)).sum(dim=1)[0]
                sums.add()
                count += int(mask.sum().item())
    if count == 0:
        raise TadaError("the probe has no content tokens (only special tokens or empty inputs)")
    return ProbeStats(sums.means(count),
                      {"tokens": count, "inputs": used_inputs, "site": site, "max_length": max_length,
                       **({"max_tokens": max_tokens} if max_tokens is not None else {})})


# ---- cache ---------------------------------------------------------------------------------

EXTRACTOR_VERSION = 2  # 2: one unpadded forward per probe input (byte-identical for any batch size)


def cache_dir() -> Path:
    """Where extracted probe statistics are cached: ``probes`` under :func:`tada._util.cache_root`."""
    return cache_root() / "probes"


def cache_key(base_name: str, probe: ProbeSet, n: int, max_length: int, site: str,
              module_names: list[str]) -> str:
    payload = json.dumps({"extractor": EXTRACTOR_VERSION, "base": base_name, "probe": probe.sha256, "n": n, "seed": probe.seed,
                          "max_length": max_length, "site": site, "modules": sorted(module_names)},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def stats_for_probe(probe: ProbeSet, module_names: list[str], *, base_name: str, load_model,
                    n: int, max_length: int = 256, site: str = "module-input", batch_size: int = 8,
                    use_cache: bool = True, progress: bool = True) -> tuple[ProbeStats, bool]:
    """Probe statistics from the cache, or computed with ``load_model()`` → (model, tokenizer).

    Returns (stats, came_from_cache). The model is only loaded on a cache miss.
    """
    key = cache_key(base_name, probe, n, max_length, site, module_names)
    path = cache_dir() / f"{key}.safetensors"
    if use_cache and path.is_file():
        try:
            return ProbeStats.load(path), True
        except TadaError:
            path.unlink(missing_ok=True)  # a corrupt cache entry is recomputed
    model, tokenizer = load_model()
    stats = extract_stats(model, tokenizer, probe.items, module_names, batch_size=batch_size,
                          max_length=max_length, site=site, progress=progress)
    stats.meta.update({"base": base_name, "probe_file": probe.path, "probe_sha256": probe.sha256,
                       "n": n, "seed": probe.seed})
    if use_cache:
        stats.save(path)
    return stats, False


def linear_modules(model: torch.nn.Module, target_modules: str) -> list[str]:
    output_embeddings = getattr(model, "get_output_embeddings", None)
    head = output_embeddings() if callable(output_embeddings) else None
    wanted = None if target_modules == "all-linear" else {t.strip() for t in target_modules.split(",")}
    names = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m is not head
             and (wanted is None or n.rsplit(".", 1)[-1] in wanted)]
    if not names:
        raise TadaError(f"no linear modules match `target_modules` {target_modules}")
    return names
