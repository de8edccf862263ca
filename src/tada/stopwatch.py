"""Opt-in step timing (``tada analyze timing``, the paper's Table 8).

Code marks its steps with ``with step("gating"): ...``; the marks cost one context-variable read
unless a :class:`Stopwatch` is active, in which case each step's wall time is added to it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ACTIVE: ContextVar[Stopwatch | None] = ContextVar("tada_stopwatch", default=None)


class Stopwatch:
    """Seconds per step name, accumulated over every ``step`` run while it is active, and how many
    times each step ran (``counts``). ``clock``: the time source (tests give a fake one)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.clock = clock

    @contextmanager
    def active(self) -> Iterator[Stopwatch]:
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + 1


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time the block into the active stopwatch, if any."""
    watch = _ACTIVE.get()
    if watch is None:
        yield
        return
    start = watch.clock()
    try:
        yield
    finally:
        watch.add(name, watch.clock() - start)
