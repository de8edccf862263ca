"""Entry-wise operations on dense deltas (TIES, DARE, magnitude pruning): small pure functions.

Each acts on one module's d_out×d_in ΔW at a time (never all modules at once). Conventions
(SPEC §7): top-k keeps k = max(1, int(density·numel)) entries, ties broken by index (stable
sort), as mergekit does; DARE drops with an explicit ``torch.Generator`` and rescales by
1/density (the DARE paper, PEFT) or to the original L1 norm (``rescale="l1"``, mergekit's rule);
TIES elects the sign per entry by the sum of the *weighted* trimmed deltas and takes the
disjoint mean weighted by the agreeing entries' weights (mergekit's ``normalize=True``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..errors import TadaError

if TYPE_CHECKING:
    import numpy as np  # imported where used (start-up: `tada methods` loads this module)


#: Entry-wise passes run over chunks of this many entries (a cache-sized working set: 512 KB per
#: float32 array): the large modules' several passes then stay in cache instead of streaming 64 MB
#: from memory each. Here (2 MB L2 per core) 2¹⁷ was the fastest of 2¹⁴…2¹⁹ for a scratch version
#: of the TIES pass, and 2¹⁶ 10–20% slower for the TIES and DARE passes of
#: benchmarks/entrywise_floor.py (mostly the two Python threads' per-call overhead). No result
#: depends on it.
CHUNK = 1 << 17
#: Above this many entries the k-th largest magnitude is found from a bracket (see ``top_k_threshold``).
BRACKET_MIN_NUMEL = 1 << 20
_SAMPLE = 1 << 16


def _chunks(n: int):
    return ((s, min(s + CHUNK, n)) for s in range(0, n, CHUNK))


def _each_chunk(n: int, work, *, ordered: bool = False) -> list:
    """``[work(a, b) for each chunk (a, b) of range(n)]``, in chunk order. Unless the pass is
    ``ordered`` (its result depends on the chunks' order: DARE's seeded draws, a trim that keeps
    only some of its tied entries), large inputs are split into one contiguous run of chunks per
    torch thread (``torch.get_num_threads()``), each run in its own Python thread: numpy releases
    the GIL inside its loops, so order-free passes use every core the user gave torch (the
    chunks' results, and so the output, do not depend on it)."""
    chunks = list(_chunks(n))
    threads = min(torch.get_num_threads(), len(chunks)) if n >= BRACKET_MIN_NUMEL and not ordered else 1
    if threads <= 1:
        return [work(a, b) for a, b in chunks]
    step = -(-len(chunks) // threads)
    runs = [chunks[i:i + step] for i in range(0, len(chunks), step)]
    done = _in_threads(lambda run: [work(a, b) for a, b in run], runs, len(runs))
    return [r for run in done for r in run]


def _in_threads(work, items: list, threads: int) -> list:
    """``[work(item) for item in items]`` on ``threads`` Python threads (numpy's loops and torch's
    kernels release the GIL), in the items' order; in this thread when ``threads`` ≤ 1."""
    if threads <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, items))


def _array(t: torch.Tensor) -> np.ndarray:
    """A numpy view of a contiguous CPU tensor (the chunk loops run in numpy: its comparisons and
    masked products are several times faster than torch's bool kernels on this kind of CPU)."""
    return t.detach().contiguous().numpy()


@dataclass(frozen=True)
class Threshold:
    """The top-k rule of one flattened ΔW: keep |x| > ``value`` and, of the ``equal`` entries
    with |x| == ``value``, the first ``k − above`` in index order (mergekit's stable sort)."""

    value: float
    above: int
    equal: int
    k: int

    @property
    def every_tie_kept(self) -> bool:
        return self.above + self.equal == self.k


def kth_largest_abs(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest |entry| of a 1-D tensor, exactly (0-dim tensor): see :func:`top_k_threshold`."""
    return top_k_threshold(values, k)[0]


def top_k_threshold(values: torch.Tensor, k: int) -> tuple[torch.Tensor, int]:
    """The k-th largest |entry| of a 1-D tensor, exactly, and how many entries lie strictly above it."""
    t = threshold_rule(values, k)
    return torch.tensor(t.value, dtype=values.dtype), t.above


def threshold_rule(values: torch.Tensor, k: int) -> Threshold:
    """The exact top-k rule of a 1-D tensor (:class:`Threshold`).

    Large inputs: a fixed-seed sample of 65,536 entries brackets the answer, one chunked pass
    counts the entries above the bracket and gathers those inside it, and the order statistic is
    taken among those few (numpy's ``partition``: the same value as torch's ``kthvalue``, ~10×
    faster on these ~400K entries here); if the bracket misses (possible, never seen), the full
    ``kthvalue`` runs. The threshold is always ``torch.kthvalue(values.abs(), n - k + 1)``.
    """
    import numpy as np

    n = values.numel()
    if n >= BRACKET_MIN_NUMEL:
        x = _array(values)
        idx = torch.randint(n, (_SAMPLE,), generator=torch.Generator().manual_seed(0)).numpy()
        sample = np.sort(np.abs(x[idx]))
        q = 1.0 - k / n  # the answer's quantile
        margin = 6.0 * (q * (1.0 - q) / _SAMPLE) ** 0.5 + 2.0 / _SAMPLE
        lo = sample[max(0, int((q - margin) * _SAMPLE))]
        hi = sample[min(_SAMPLE - 1, int((q + margin) * _SAMPLE) + 1)]

        def count(a: int, b: int) -> tuple[int, np.ndarray]:
            mag = np.abs(x[a:b])
            sel = mag >= lo
            sel &= mag <= hi
            return int(np.count_nonzero(mag > hi)), mag[sel]

        counted = _each_chunk(n, count)
        above = sum(c for c, _ in counted)
        pool = np.concatenate([part for _, part in counted])
        if above < k <= above + pool.size:
            j = pool.size - (k - above)  # 0-based: the (j + 1)-th smallest of the pool
            threshold = np.partition(pool, j)[j]
            return Threshold(float(threshold), above + int(np.count_nonzero(pool > threshold)),
                             int(np.count_nonzero(pool == threshold)), k)
    mag = values.abs()
    threshold = torch.kthvalue(mag, n - k + 1).values
    return Threshold(threshold.item(), int((mag > threshold).sum()), int((mag == threshold).sum()), k)


class _Keep:
    """The keep mask of one trim, chunk by chunk in index order (ties at the threshold kept first-come)."""

    def __init__(self, rule: Threshold):
        self.rule = rule
        self.ties_left = rule.k - rule.above

    def __call__(self, part: np.ndarray) -> np.ndarray:
        import numpy as np

        mag = np.abs(part)
        if self.rule.every_tie_kept:
            return mag >= self.rule.value
        keep = mag > self.rule.value
        if self.ties_left > 0:
            tied = np.flatnonzero(mag == self.rule.value)[: self.ties_left]
            keep[tied] = True
            self.ties_left -= tied.size
        return keep


def trim_rule(delta: torch.Tensor, density: float) -> Threshold | None:
    """The top-density rule of one ΔW, k = max(1, int(density·numel)); None when density ≥ 1."""
    if density >= 1.0:
        return None
    return threshold_rule(delta.reshape(-1), max(1, int(density * delta.numel())))


def magnitude_trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the top-k entries by magnitude, k = max(1, int(density·numel)); zero the rest.

    Entries equal to the k-th largest magnitude are kept in index order until k are kept.
    """
    import numpy as np

    rule = trim_rule(delta, density)
    if rule is None:
        return delta.clone()
    flat = _array(delta.reshape(-1))
    out = np.empty_like(flat)
    keep = _Keep(rule)

    def trim(a: int, b: int) -> None:
        np.multiply(flat[a:b], keep(flat[a:b]), out=out[a:b])

    _each_chunk(flat.size, trim, ordered=not rule.every_tie_kept)  # a partial tie: first-come in index order
    return torch.from_numpy(out).reshape(delta.shape)


def _kept(part: np.ndarray, keep: np.ndarray, divisor: float | None, out: np.ndarray | None = None) -> np.ndarray:
    """One chunk's DARE drop: the kept entries, divided by ``divisor`` (None: not rescaled) in the
    chunk's dtype — bit for bit torch's ``Tensor.div_(divisor)``, without a torch call (and its
    intra-op threads) inside the chunk threads. ``out``: where it goes (default a new array)."""
    import numpy as np

    kept = np.multiply(part, keep, out=out)
    if divisor is not None:
        kept /= kept.dtype.type(divisor)
    return kept


@dataclass(frozen=True)
class Drops:
    """DARE's drop of every input of one module, drawn before the merge pass: a keep mask per input
    (the flattened ΔW's entries, bool) and what the kept entries are divided by (the density, or
    None: no rescaling)."""

    keep: list[np.ndarray]
    divisor: float | None


def keep_below(density: float) -> int:
    """DARE's keep rule ``u < density`` on torch's float32 uniforms, as a rule on the low 24 bits of
    the 32-bit mt19937 draw each uniform is made of: keep ⇔ (draw mod 2²⁴) < ``keep_below(density)``.

    ATen makes a float32 uniform from one draw r as u = (r mod 2²⁴)·2⁻²⁴ (exact), and compares it
    with ``density`` rounded to float32 (numpy's comparison of a float32 array with a Python
    float); so u < density ⇔ (r mod 2²⁴) < ceil(float32(density)·2²⁴). Pinned against
    ``torch.rand`` by ``tests/test_sparsify.py``.
    """
    import math
    from fractions import Fraction

    import numpy as np

    return math.ceil(Fraction(float(np.float32(density))) * (1 << 24))


def dare_drops(n: int, density: float, generators: list[torch.Generator], rescale: bool) -> Drops:
    """DARE's keep masks (``uniform < density``) for ``n`` entries per input, each from its input's
    generator in index order, with the inputs in parallel threads (one generator is sequential; the
    inputs' are independent, so the masks do not depend on the thread count).

    The masks are those of ``torch.rand(n, generator=g) < density`` (float32), drawn as int32
    ``random_`` (the same mt19937 draws, one per entry, r mod 2³¹: ~25% faster than making floats)
    compared on their low 24 bits (:func:`keep_below`), chunk by chunk into one reused buffer.
    """
    import numpy as np

    below = keep_below(density)

    def draw(generator: torch.Generator) -> np.ndarray:
        keep = np.empty(n, dtype=bool)
        buffer = torch.empty(min(CHUNK, n), dtype=torch.int32)
        low = np.empty(buffer.numel(), dtype=np.int32)
        for a, b in _chunks(n):
            bits = _array(buffer[: b - a].random_(generator=generator))
            np.bitwise_and(bits, (1 << 24) - 1, out=low[: b - a])
            np.less(low[: b - a], below, out=keep[a:b])
        return keep

    threads = min(torch.get_num_threads(), len(generators)) if n >= BRACKET_MIN_NUMEL else 1
    return Drops(_in_threads(draw, generators, threads), density if rescale else None)


def dare_drop(delta: torch.Tensor, density: float, generator: torch.Generator,
              rescale: str = "density") -> torch.Tensor:
    """Keep each entry with probability ``density`` and rescale the survivors.

    ``rescale="density"``: × 1/density (DARE paper, PEFT). ``"l1"``: to the original L1 norm
    (mergekit). ``"none"``: no rescaling.
    """
    if density >= 1.0:
        return delta.clone()
    if delta.dtype == torch.float32:
        # float32 work: the fused pass's float32 draws (a different, equally valid draw than float64's)
        drops = dare_drops(delta.numel(), density, [generator], rescale == "density")
        out = torch.from_numpy(_kept(_array(delta.reshape(-1)), drops.keep[0], drops.divisor)).reshape(delta.shape)
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


def ties_merge(deltas: list[torch.Tensor], weights: list[float], drops: Drops | None = None,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """Sign election + disjoint mean (TIES steps 2–3) of already trimmed (or dropped) deltas:
    :func:`merge_entrywise` with ``rule="ties"``."""
    return merge_entrywise(deltas, weights, "ties", drops=drops, out=out)


def merge_entrywise(deltas: list[torch.Tensor], weights: list[float], rule: str, *,
                    trims: list[Threshold | None] | None = None, drops: Drops | None = None,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """One fused chunked pass over the deltas: optional DARE drop (``drops``: :func:`dare_drops`,
    drawn before the pass) or top-k trim (``trims``: :func:`trim_rule`), then the merge.

    ``rule="sum"``: Σ w_i δ_i. ``rule="ties"``: sign = sign(Σ_i w_i δ_i) (0 counts as +); an
    entry of adapter i takes part when sign(w_i δ_i) equals it; result = Σ w_i δ_i [agree] /
    Σ w_i [agree] (divisor 0 → 1). Every chunk (see ``CHUNK``) is trimmed/dropped and merged while
    in cache, through per-thread scratch buffers; the deltas are never stacked. Products with 0/1
    masks replace ``where``: the values are the same (a dropped entry may be −0.0 instead of +0.0).
    ``out``: where the result goes (d_out×d_in, contiguous; may be one of ``deltas``: each chunk is
    read before it is written); default a new tensor.
    """
    import numpy as np

    flats = [d.reshape(-1) for d in deltas]
    arrays = [_array(f) for f in flats]
    dtype = arrays[0].dtype.type
    ws = [dtype(w) for w in weights]
    # every weight positive: a divisor is 0 only where no entry agrees, and there the numerator is
    # ±0 (or NaN), so dividing by the smallest weight instead of 1 gives the same bits, in one op
    floor = min(ws) if all(w > 0 for w in ws) else None
    keeps = [None if t is None else _Keep(t) for t in (trims or [None] * len(flats))]
    result = torch.empty_like(flats[0]) if out is None else out.reshape(-1)
    target = _array(result)
    scratch = _Scratch(arrays[0].dtype, len(arrays) + 2, 3)

    def merge(a: int, b: int) -> None:
        floats, flags = scratch.get(b - a)
        parts = []
        for i, (x, w, k) in enumerate(zip(arrays, ws, keeps)):
            part = x[a:b]
            if drops is not None:
                part = _kept(part, drops.keep[i][a:b], drops.divisor, out=floats[i])
            if k is not None:
                part = np.multiply(part, k(part), out=floats[i])
            if w != 1:
                part = np.multiply(part, w, out=floats[i])
            parts.append(part)
        total = target[a:b] if rule == "sum" else floats[-2]
        if len(parts) > 1:
            np.add(parts[0], parts[1], out=total)
        else:
            np.copyto(total, parts[0])
        for part in parts[2:]:
            total += part
        if rule == "sum":
            return
        negative, agree, nonzero = flags
        np.less(total, 0, out=negative)  # the elected sign is − here, + elsewhere (0 counts as +)
        numerator, divisor = total, floats[-1]
        for i, (part, w) in enumerate(zip(parts, ws)):
            np.greater(part, 0, out=agree)
            agree ^= negative  # sign(w_i δ_i) is the elected one …
            agree &= np.not_equal(part, 0, out=nonzero)  # … and zeros never agree
            if i == 0:
                np.multiply(part, agree, out=numerator)  # total is no longer needed: reused
                np.multiply(w, agree, out=divisor)
            else:
                scaled = np.multiply(part, agree, out=part if part is floats[i] else None)
                numerator += scaled
                np.multiply(w, agree, out=scaled)
                divisor += scaled
        if floor is None:
            divisor += divisor == 0
        else:
            np.maximum(divisor, floor, out=divisor)
        np.divide(numerator, divisor, out=target[a:b])

    _each_chunk(target.size, merge, ordered=any(k is not None and not k.rule.every_tie_kept for k in keeps))
    return result.reshape(deltas[0].shape)


class _Scratch:
    """Per-thread work buffers of one chunked pass (``floats`` float buffers, ``flags`` bool ones),
    made once per thread for the largest chunk and sliced for a smaller one."""

    def __init__(self, dtype, floats: int, flags: int):
        import threading

        self.dtype, self.floats, self.flags = dtype, floats, flags
        self.local = threading.local()

    def get(self, m: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        import numpy as np

        bufs = getattr(self.local, "bufs", None)
        if bufs is None or bufs[0][0].size < m:
            bufs = self.local.bufs = ([np.empty(m, self.dtype) for _ in range(self.floats)],
                                      [np.empty(m, bool) for _ in range(self.flags)])
        return [f[:m] for f in bufs[0]], [f[:m] for f in bufs[1]]


def weighted_sum(deltas: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Σ w_i δ_i in one chunked pass (:func:`merge_entrywise` with ``rule="sum"``)."""
    return merge_entrywise(deltas, weights, "sum")
