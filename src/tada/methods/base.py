"""What every merge method shares: its per-module input and result, and the registry.

A method is a pure function ``fn(module: ModuleInput, params) -> ModuleResult`` over one adapted
module; the engine streams modules through it. ``params`` is the method's own dataclass, whose
fields and defaults are its documented parameters (``tada methods`` lists them).
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from collections.abc import Callable, Iterable

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..errors import TadaError
from ..options import build
from ..lowrank import Components, LoraModule, LowRank, from_lora, thin_svd


def side_names(k: int) -> tuple[str, ...]:
    """The names of the inputs of a merge with ``k`` domain adapters: ``task``, ``domain``, then
    ``domain2`` … ``domainK`` (the first domain keeps its two-adapter name, so its report keys and
    seeded draws are those of a two-adapter merge)."""
    return ("task", "domain", *(f"domain{i}" for i in range(2, k + 1)))


class Workspace:
    """Dense buffers the entry-wise methods reuse from one module to the next within a merge (the
    engine makes one per merge; it is freed with the merge).

    Forming a d_out×d_in ΔW in fresh memory pays the kernel's first-touch page faults (here about
    half of the 22 ms a 4096² float32 ΔW takes to form); one raw buffer per input index, grown when a
    larger module comes (the smaller one freed first), keeps the peak at the largest module's work,
    as without it. A buffer's contents belong to the module being merged: read them before the next."""

    def __init__(self) -> None:
        self._raw: dict[int, torch.Tensor] = {}

    def buffer(self, index: int, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised contiguous ``shape`` tensor of ``dtype``: input ``index``'s buffer."""
        nbytes = shape[0] * shape[1] * torch.empty((), dtype=dtype).element_size()
        raw = self._raw.get(index)
        if raw is None or raw.numel() < nbytes:
            self._raw.pop(index, None)
            raw = self._raw[index] = torch.empty(nbytes, dtype=torch.uint8)
        return raw[:nbytes].view(dtype).view(shape)


@dataclass(frozen=True)
class ModuleInput:
    """Everything a method may use for one module.

    ``task``/``domain`` are None when the module is missing from that adapter (``--allow-partial``:
    the missing delta is zero); ``more_domains`` are the 2nd…Kth domain adapters of a K-way merge
    (SPEC §6b). ``rank`` is the output rank for truncating methods. ``h_domain`` /
    ``h_general`` (and ``h_more_domains``) are the probe means (d_in, float64) when the method
    needs probes.
    """

    name: str
    task: LoraModule | None
    domain: LoraModule | None
    rank: int
    h_domain: torch.Tensor | None = None
    h_general: torch.Tensor | None = None
    more_domains: tuple[LoraModule | None, ...] = ()
    h_more_domains: tuple[torch.Tensor | None, ...] = ()
    #: where :meth:`dense` forms ΔW when given one (the engine's, shared by a merge's modules)
    workspace: Workspace | None = field(default=None, compare=False, repr=False)

    @property
    def domains(self) -> tuple[LoraModule | None, ...]:
        """Every domain adapter's module (K of them)."""
        return (self.domain, *self.more_domains)

    @property
    def h_domains(self) -> tuple[torch.Tensor | None, ...]:
        """Every domain probe's mean, aligned with :attr:`domains`."""
        return (self.h_domain, *self.h_more_domains)

    @property
    def sides(self) -> tuple[str, ...]:
        """The input names, task first: ``task``, ``domain``, ``domain2``…"""
        return side_names(len(self.domains))

    @property
    def inputs(self) -> tuple[LoraModule | None, ...]:
        """Every input's module, aligned with :attr:`sides`."""
        return (self.task, *self.domains)

    @cached_property
    def shape(self) -> tuple[int, int]:
        return next(m for m in self.inputs if m is not None).shape

    def _module(self, side: str) -> LoraModule | None:
        return self.inputs[self.sides.index(side)]

    def lowrank(self, side: str) -> LowRank:
        """ΔW of one side as float64 factors (zero-width factors when the side is missing)."""
        m = self._module(side)
        if m is None:
            d_out, d_in = self.shape
            return LowRank(torch.zeros(d_out, 0, dtype=torch.float64), torch.zeros(d_in, 0, dtype=torch.float64))
        return from_lora(m.A, m.B, m.scaling)

    @cached_property
    def components(self) -> list[Components]:
        """Eq. 4 for every input, task first: the thin SVD of its ΔW (float64; zero-width for a
        missing side). Computed once per module input: a method's first pass and its merge share
        it when the engine keeps the module inputs between the passes. Read-only."""
        return [thin_svd(self.lowrank(side)) for side in self.sides]

    def dense(self, side: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """ΔW = c·B·A of one side, d_out×d_in in ``dtype`` (default float64; entry-wise methods
        only, one module at a time; float32 halves the memory traffic of the large modules). With a
        :attr:`workspace`, formed in its buffer for this side: valid until the next ``dense`` call
        for the same side (the engine's next module)."""
        dtype = dtype or torch.float64
        out = None if self.workspace is None else self.workspace.buffer(self.sides.index(side), self.shape, dtype)
        m = self._module(side)
        if m is None:
            return torch.zeros(self.shape, dtype=dtype) if out is None else out.zero_()
        if dtype == torch.float64:
            lr = self.lowrank(side)
            return torch.mm(lr.P, lr.Q.T, out=out)
        return torch.mm(m.B.to(dtype) * float(m.scaling), m.A.to(dtype), out=out)

    def seed_for(self, seed: int, purpose: str) -> torch.Generator:
        """A generator seeded from (seed, module, purpose): deterministic, independent of module order."""
        digest = hashlib.sha256(f"{seed}:{self.name}:{purpose}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


@dataclass
class ModuleResult:
    """The merged module as LoRA factors (B: d_out×r, A: r×d_in, scaling 1) and report data."""

    B: torch.Tensor
    A: torch.Tensor
    info: dict = field(default_factory=dict)


#: A method's optional first pass over every module (before any is merged): returns the
#: parameters the merge pass uses and a report entry (TaDA's ``delta: auto``).
Calibrate = Callable[[Iterable[ModuleInput], Any], "tuple[Any, dict]"]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method and what every front end needs to know about it.

    ``label``: its row name in tables; ``reference``: where it comes from; ``exact``: the result
    is ΔW exactly (no truncation); ``sweeps``: the benchmark grid axes it takes (``density``,
    ``seed``); ``row``: its position in the paper's Table 3 layout (None: not in the default grid);
    ``summarize``: what the method adds to the report's summary, from every module's report entry.
    """

    name: str
    params: type
    fn: Callable[[ModuleInput, Any], ModuleResult]
    needs_probes: bool
    exact: bool
    summary: str
    calibrate: Calibrate | None = None
    label: str = ""
    reference: str = ""
    sweeps: tuple[str, ...] = ()
    row: int | None = None
    summarize: Callable[[dict[str, dict]], dict] | None = None


REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, params: type, *, label: str, reference: str, row: int | None = None,
             sweeps: tuple[str, ...] = (), needs_probes: bool = False, exact: bool = False,
             calibrate: Calibrate | None = None, summarize: Callable[[dict[str, dict]], dict] | None = None):
    """Decorator: ``@register("ties", TiesParams, label="TIES", reference=..., row=3,
    sweeps=("density",))`` adds a method to the registry; its parameters are ``params``' fields
    (declared with :func:`tada.options.opt`, which gives each its CLI flag and help)."""

    def wrap(fn):
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = MethodSpec(name, params, fn, needs_probes, exact, doc[0] if doc else "", calibrate,
                                    label, reference, tuple(sweeps), row, summarize)
        return fn

    return wrap


def make_params(spec: MethodSpec, values: dict | None, n_inputs: int = 2) -> Any:
    """Build the method's parameter dataclass from a dict, refusing unknown names in one line.

    ``n_inputs``: task + domain adapters. ``weights`` must then hold one number per input; when it
    is not given, the method's default is widened to ``n_inputs`` the way it is meant: a default
    that sums to 1 (an average, e.g. linear's 0.5, 0.5) becomes 1/n each, any other (TIES's and
    cat's 1, 1) repeats its value."""
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(spec.params)}
    if "weights" in known and "weights" not in values and n_inputs != 2:
        default = dataclasses.MISSING if known["weights"].default is dataclasses.MISSING else known["weights"].default
        if isinstance(default, tuple) and len(set(default)) == 1:
            values["weights"] = ((1.0 / n_inputs,) * n_inputs if abs(sum(default) - 1.0) < 1e-12
                                 else (default[0],) * n_inputs)
    params = build(spec.params, values, f"method {spec.name}", noun="parameter")
    weights = getattr(params, "weights", None)
    if weights is not None and len(weights) != n_inputs:
        raise TadaError(f"method {spec.name}: `weights` must be {n_inputs} numbers (task, then each domain "
                        f"adapter), got {len(weights)}")
    return params


def check_weights(weights: tuple[float, ...], what: str = "weights") -> None:
    if len(weights) < 2 or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
        raise TadaError(f"{what} must be numbers (task, then each domain adapter), got {weights}")
