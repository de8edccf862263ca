"""Entry-wise operations on dense deltas (TIES, DARE, magnitude pruning): small pure functions.

Each acts on one module's d_out×d_in ΔW at a time (never all modules at once). Conventions
(SPEC §7): top-k keeps k = max(1, int(density·numel)) entries, ties broken by index (stable
sort), as mergekit does; DARE drops with an explicit ``torch.Generator`` and rescales by
1/density (the DARE paper, PEFT) or to the original L1 norm (``rescale="l1"``, mergekit's rule);
TIES elects the sign per entry by the sum of the *weighted* trimmed deltas and takes the
disjoint mean weighted by the agreeing entries' weights (mergekit's ``normalize=True``).
"""
from __future__ import annotations

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..errors import TadaError


def check_density(density: float) -> None:
    if not 0.0 < density <= 1.0:
        raise TadaError(f"density must be in (0, 1], got {density}")


#: Entry-wise passes run over chunks of this many entries (a cache-sized working set): the
#: large modules' several passes then stay in L2 instead of streaming 64 MB from memory each.
CHUNK = 1 << 16
#: Above this many entries the k-th largest magnitude is found from a bracket (see ``kth_largest_abs``).
BRACKET_MIN_NUMEL = 1 << 20
_SAMPLE = 1 << 16


def _chunks(n: int):
    return ((s, min(s + CHUNK, n)) for s in range(0, n, CHUNK))


def kth_largest_abs(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest |entry| of a 1-D tensor, exactly (0-dim tensor): see :func:`top_k_threshold`."""
    return top_k_threshold(values, k)[0]


def top_k_threshold(values: torch.Tensor, k: int) -> tuple[torch.Tensor, int]:
    """The k-th largest |entry| of a 1-D tensor, exactly, and how many entries lie strictly above it.

    Large inputs: a fixed-seed sample of 65,536 entries brackets the answer, one chunked pass
    counts the entries above the bracket and gathers those inside it, and ``kthvalue`` runs on
    those few; if the bracket misses (possible, never seen), the full ``kthvalue`` runs. The
    threshold is always ``torch.kthvalue(values.abs(), n - k + 1)``.
    """
    n = values.numel()
    if n < BRACKET_MIN_NUMEL:
        mag = values.abs()
        threshold = torch.kthvalue(mag, n - k + 1).values
        return threshold, int((mag > threshold).sum())
    idx = torch.randint(n, (_SAMPLE,), generator=torch.Generator().manual_seed(0))
    sample = values[idx].abs().sort().values
    q = 1.0 - k / n  # the answer's quantile
    margin = 6.0 * (q * (1.0 - q) / _SAMPLE) ** 0.5 + 2.0 / _SAMPLE
    lo = sample[max(0, int((q - margin) * _SAMPLE))]
    hi = sample[min(_SAMPLE - 1, int((q + margin) * _SAMPLE) + 1)]
    above, inside = 0, []
    for a, b in _chunks(n):
        mag = values[a:b].abs()
        above += int((mag > hi).sum())
        inside.append(mag[(mag >= lo) & (mag <= hi)])
    pool = torch.cat(inside)
    if above < k <= above + pool.numel():
        threshold = torch.kthvalue(pool, pool.numel() - (k - above) + 1).values
        return threshold, above + int((pool > threshold).sum())
    mag = values.abs()
    threshold = torch.kthvalue(mag, n - k + 1).values
    return threshold, int((mag > threshold).sum())


def magnitude_trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the top-k entries by magnitude, k = max(1, int(density·numel)); zero the rest.

    Entries equal to the k-th largest magnitude are kept in index order until k are kept.
    """
    if density >= 1.0:
        return delta.clone()
    flat = delta.reshape(-1)
    k = max(1, int(density * flat.numel()))
    threshold, above = top_k_threshold(flat, k)
    out = torch.empty_like(flat)
    ties_left = k - above
    for a, b in _chunks(flat.numel()):
        part = flat[a:b]
        mag = part.abs()
        keep = mag > threshold
        if ties_left > 0:
            tied = (mag == threshold).nonzero().flatten()[:ties_left]
            keep[tied] = True
            ties_left -= tied.numel()
        out[a:b] = part.where(keep, 0.0)
    return out.reshape(delta.shape)


def dare_chunk_drop(density: float, generator: torch.Generator, rescale: bool):
    """DARE on consecutive float32 chunks of one flattened ΔW: each call draws the chunk's float32
    uniforms from ``generator`` (so a ΔW's draws depend only on the chunk size), drops, and
    optionally rescales by 1/density. Shared by ``dare_drop`` and the fused ``ties_merge``."""
    def drop(part: torch.Tensor) -> torch.Tensor:
        kept = part.where(torch.rand(part.numel(), generator=generator) < density, 0.0)
        return kept.div_(density) if rescale else kept

    return drop


def dare_drop(delta: torch.Tensor, density: float, generator: torch.Generator,
              rescale: str = "density") -> torch.Tensor:
    """Keep each entry with probability ``density`` and rescale the survivors.

    ``rescale="density"``: × 1/density (DARE paper, PEFT). ``"l1"``: to the original L1 norm
    (mergekit). ``"none"``: no rescaling.
    """
    if density >= 1.0:
        return delta.clone()
    if delta.dtype == torch.float32:
        # float32 work: float32 uniforms drawn chunk by chunk, the drop and the 1/density rescale
        # applied while the chunk is in cache (a different, equally valid draw than float64's)
        flat = delta.reshape(-1)
        out = torch.empty_like(flat)
        drop = dare_chunk_drop(density, generator, rescale == "density")
        for a, b in _chunks(flat.numel()):
            out[a:b] = drop(flat[a:b])
        out = out.reshape(delta.shape)
        if rescale == "density":
            return out
    else:
        keep = torch.rand(delta.shape, generator=generator, dtype=torch.float64) < density
        out = delta.where(keep, 0.0)
        if rescale == "density":
            return out.div_(density)
    if rescale == "l1":
        kept = out.abs().sum()
        return out * (delta.abs().sum() / kept) if kept > 0 else out
    if rescale == "none":
        return out
    raise TadaError(f"unknown DARE rescale {rescale!r}; choose density, l1 or none")


def ties_merge(deltas: list[torch.Tensor], weights: list[float], prepare: list | None = None) -> torch.Tensor:
    """Sign election + disjoint mean (TIES steps 2–3).

    sign = sign(Σ_i w_i δ_i) (0 counts as +); an entry of adapter i takes part when
    sign(w_i δ_i) equals it; result = Σ w_i δ_i [agree] / Σ w_i [agree] (divisor 0 → 1).
    Computed chunk by chunk (see ``CHUNK``), never stacking the deltas. ``prepare``: one function
    per delta applied to each of its chunks first (DARE's drop, fused: ``dare_chunk_drop``).
    """
    flats = [d.reshape(-1) for d in deltas]
    ws = [float(w) for w in weights]
    out = torch.empty_like(flats[0])
    for a, b in _chunks(out.numel()):
        parts = [f[a:b] for f in flats] if prepare is None else [fn(f[a:b]) for fn, f in zip(prepare, flats)]
        weighted = [p if w == 1.0 else p * w for p, w in zip(parts, ws)]
        total = weighted[0].clone()
        for wd in weighted[1:]:
            total += wd
        sign = torch.where(total >= 0, 1.0, -1.0).to(total.dtype)
        numerator = torch.zeros_like(total)
        divisor = torch.zeros_like(total)
        for wd, w in zip(weighted, ws):
            agree = wd * sign > 0  # sign(w_i δ_i) equals the elected sign (zeros never agree)
            numerator += wd.where(agree, 0.0)
            divisor.add_(agree, alpha=w)
        divisor.masked_fill_(divisor == 0, 1.0)
        torch.div(numerator, divisor, out=out[a:b])
    return out.reshape(deltas[0].shape)


def weighted_sum(deltas: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Σ w_i δ_i (two passes per delta, one output buffer)."""
    out = deltas[0] * float(weights[0])
    for d, w in zip(deltas[1:], weights[1:]):
        out.add_(d, alpha=float(w))
    return out
