"""TaDA (paper §3): calibrated probe gating + per-component subspace-aware merging, Eqs. 1–8.

Per module: thin SVD of both deltas (Eq. 4, low-rank route), calibrated score s (Eqs. 1–2) and
gate α (Eq. 3), joint U+V overlap filter (Eq. 5), per-component scores s_i and weights α_i
(Eq. 6), weighted merge (Eq. 7), rank-r recomposition (Eq. 8). α is the TASK weight, 1−α the
domain weight. Every ablation switch of SPEC §6 changes exactly one step.
"""
from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, replace
from collections.abc import Iterable

from .._lazy import torch  # imported on first use (start-up: `tada methods`)

from ..options import opt
from .base import ModuleInput, ModuleResult, register
from ..errors import TadaError
from ..lowrank import Components, svd_of_weighted_components, truncate
from ..stopwatch import step
from ..roles import TauTable

#: Relative floor of the denominators of Eq. 1 (SPEC §5): ε_T = 1e-12·σ₁^T·‖h‖.
EPS_REL = 1e-12

#: Which adapters' components the overlap filter may drop (``filter_side``).
FILTER_SIDES = ("both", "task")

#: How K domain adapters' per-component weights combine (SPEC §6b).
DOMAIN_COMBINE = ("sum", "mean")
#: Energy-matched controls of the filter (issue #25): per module and adapter, remove the same
#: Σσ² as the filter does, either from random components or by scaling the whole adapter.
ENERGY_CONTROLS = ("none", "random", "scale")


@dataclass(frozen=True)
class TadaParams:
    """beta: sigmoid slope (Eq. 3); delta: overlap threshold δ (Eq. 5), a number or ``"auto"``
    (calibrated to the pair: the pooled overlap above which a fraction ``delta_drop`` of all
    components lies, SPEC §6); overlap_lambda: λ (Eq. 5); filter_side: ``both`` (Algorithm 1's
    R^T and R^D) or ``task`` (Eq. 5 literally: only task components are filtered); tau: τ
    overrides by role (query/key/value/attn_out/qkv/mlp/other) or module-name regex.

    Ablations (SPEC §6, Table 7), each changing one thing: fixed_alpha=a (every α_i = a);
    global_tau=t (τ_m = t everywhere); no_filter (keep every component); keep_high_overlap (keep
    only what full TaDA drops); random_filter (drop as many as full TaDA, at random, seeded by
    ``seed``); layer_alpha (every component takes the module's α of Eq. 3); energy_control
    (``random``: drop random components until the same Σσ² as the filter's is gone, the last one
    shrunk so that the energy matches exactly; ``scale``: keep every component and scale each
    filtered adapter by √(1 − E_dropped/E_total), which removes the same Σσ²).
    """

    beta: float = opt(5.0, "Sigmoid slope β (Eq. 3).", gt=0, search=(1.0, 20.0), log=True)
    delta: float | str = opt("auto", "Overlap threshold δ (Eq. 5): auto (calibrated to the pair, SPEC §6) "
                                     "or a number (the paper's literal value is 0.1).", gt=0)
    delta_drop: float = opt(0.025, "With delta auto: the fraction q of pooled components dropped.", ge=0, lt=1,
                             search=(0.0, 0.2))
    overlap_lambda: float = opt(0.5, "λ of Eq. 5 (weight of the U overlap against V's).", ge=0, le=1)
    filter_side: str = opt("both", "Filter both adapters' components (Algorithm 1) or the task's only "
                                   "(Eq. 5 literally).", choices=FILTER_SIDES)
    tau: dict = opt(help="τ override ROLE_OR_PATTERN=VALUE, e.g. attn_out=1.5 (repeatable).", factory=dict)
    tau_scale: float = opt(1.0, "Factor on every module's τ (Eq. 3's balance point: above 1 moves every gate "
                                "towards the task adapter); tada tune's balance knob.", gt=0, search=(0.5, 4.0),
                           log=True)
    global_tau: float | None = opt(None, "Ablation: τ = this value for every role.")
    fixed_alpha: float | None = opt(None, "Ablation: every α = this value.", ge=0, le=1)
    no_filter: bool = opt(False, "Ablation: keep every component.")
    keep_high_overlap: bool = opt(False, "Ablation: keep only high-overlap components.")
    random_filter: bool = opt(False, "Ablation: drop as many, at random.")
    layer_alpha: bool = opt(False, "Ablation: module α for every component.")
    energy_control: str = opt("none", "Ablation: remove the filter's Σσ² per module and adapter from random "
                                      "components (random) or by scaling the adapter (scale).",
                              choices=ENERGY_CONTROLS)
    seed: int = opt(0, "Seed of DARE drops, TaDA's random filter and the randomized SVD.")
    domain_combine: str = opt("sum", "K domain adapters: domain k's components weigh (1 − α^(k)) (sum) or that "
                                     "divided by K (mean); no effect with one domain.", choices=DOMAIN_COMBINE)

    def validate(self) -> None:
        if sum([self.no_filter, self.keep_high_overlap, self.random_filter, self.energy_control != "none"]) > 1:
            raise TadaError("choose at most one of no_filter, keep_high_overlap, random_filter, energy_control")
        if self.fixed_alpha is not None and self.layer_alpha:
            raise TadaError("fixed_alpha and layer_alpha are exclusive")

    def check_modules(self, modules: list[str]) -> None:
        """What can only be checked against the merged modules: every τ override must apply."""
        self.tau_table.check(modules)

    @property
    def tau_table(self) -> TauTable:
        return TauTable.from_overrides(self.tau, self.global_tau)

    @property
    def filters(self) -> bool:
        return not self.no_filter and (isinstance(self.delta, str) or self.delta < 1.0)




@dataclass(frozen=True)
class Gating:
    """What Eqs. 1–3 and 6 give for the task adapter against one domain adapter in one module:
    the module's calibrated score ``s`` and gate ``alpha`` (0-dim), and per component the scores
    and task weights α_i of the task's (``s_task``, ``alpha_task``: r_T) and of the domain's
    components (``s_domain``, ``alpha_domain``: r_D; the domain component's weight is 1 − α_i)."""

    s: torch.Tensor
    alpha: torch.Tensor
    s_task: torch.Tensor
    alpha_task: torch.Tensor
    s_domain: torch.Tensor
    alpha_domain: torch.Tensor


# ---- Eqs. 1–3 -------------------------------------------------------------------------------

def delta_norm(c: Components, h: torch.Tensor) -> float:
    """‖ΔW h‖ = ‖Σ ⊙ Vᵀh‖ (U has orthonormal columns)."""
    return float((c.S * (c.V.T @ h)).norm())


def ratio(num: torch.Tensor | float, den: torch.Tensor | float) -> torch.Tensor:
    """num/den with 0/0 → 0 (a zero numerator means no domain activation, whatever the floor)."""
    num, den = torch.as_tensor(num, dtype=torch.float64), torch.as_tensor(den, dtype=torch.float64)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(num == 0, torch.zeros_like(num), torch.where(den > 0, num / safe, torch.full_like(num, math.inf)))


def calibrate(r_d: torch.Tensor, r_g: torch.Tensor) -> torch.Tensor:
    """Eq. 2, s = r(P_d)/r(P_g), with r(P_g)=0 → +∞ (if r(P_d)>0) or 1 (both 0). Never NaN."""
    safe = torch.where(r_g > 0, r_g, torch.ones_like(r_g))
    s = torch.where(r_g > 0, r_d / safe, torch.where(r_d > 0, torch.full_like(r_d, math.inf), torch.ones_like(r_d)))
    return s


def module_ratio(T: Components, D: Components, h: torch.Tensor) -> torch.Tensor:
    """Eq. 1: r(P) = ‖ΔW^D h‖ / max(‖ΔW^T h‖, ε_T), ε_T = 1e-12·σ₁^T·‖h‖."""
    eps = EPS_REL * float(T.S[0]) * float(h.norm())
    return ratio(delta_norm(D, h), max(delta_norm(T, h), eps))


def gate(s: torch.Tensor, tau: float, beta: float) -> torch.Tensor:
    """Eq. 3 / Eq. 6: α = sigmoid(β(τ − s)); s = +∞ gives α = 0."""
    return torch.sigmoid(beta * (tau - s))


# ---- Eq. 5 ----------------------------------------------------------------------------------

def overlaps(T: Components, D: Components, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 for both adapters: overlap_i = max_j [λ|u_iᵀu_j| + (1−λ)|v_iᵀv_j|].

    Returns (task overlaps: k_T, domain overlaps: k_D); the domain one is the max over task
    components (SPEC §6 decision).
    """
    O = lam * (T.U.T @ D.U).abs() + (1 - lam) * (T.V.T @ D.V).abs()
    return O.max(dim=1).values, O.max(dim=0).values


def all_overlaps(comps: list[Components], lam: float) -> list[torch.Tensor]:
    """Eq. 5 over several adapters (SPEC §6b): each component's overlap is its maximum over the
    components of every *other* adapter. With two adapters this is :func:`overlaps`."""
    found: list[list[torch.Tensor]] = [[] for _ in comps]
    for a in range(len(comps)):
        for b in range(a + 1, len(comps)):
            o_a, o_b = overlaps(comps[a], comps[b], lam)
            found[a].append(o_a)
            found[b].append(o_b)
    return [_elementwise_max(f) if f else torch.zeros(c.k, dtype=torch.float64) for f, c in zip(found, comps)]


def _elementwise_max(tensors: list[torch.Tensor]) -> torch.Tensor:
    out = tensors[0]
    for t in tensors[1:]:
        out = torch.maximum(out, t)
    return out


def module_components(module: ModuleInput) -> list[Components]:
    """Eq. 4: the thin SVD of every input's ΔW (task first; computed once per module input)."""
    return module.components


def active_domains(comps: list[Components]) -> list[int]:
    """The positions (in ``comps``) of the non-zero domain deltas."""
    return [i for i in range(1, len(comps)) if comps[i].k > 0]


def module_overlaps(module: ModuleInput, lam: float) -> list[torch.Tensor] | None:
    """Eq. 5's overlaps of one module's non-zero components (task, then each non-zero domain), or
    None when the task delta or every domain delta is zero (nothing to compare: such a module takes
    the other deltas unchanged)."""
    comps = module_components(module)
    active = active_domains(comps)
    if comps[0].k == 0 or not active:
        return None
    return all_overlaps([comps[0], *(comps[i] for i in active)], lam)


def auto_delta(pooled: torch.Tensor, q: float) -> float:
    """δ for ``delta: auto`` (SPEC §6): with k = ⌊q·n⌋ over the n pooled overlaps (q < 1), the
    smallest pooled value v such that at most k overlaps are ≥ v — the smallest value above the
    (k+1)-th largest (the k-th largest itself unless tied), or just above the largest when there is
    none (k = 0). A component is kept when its overlap < δ, so at most k are dropped.
    """
    if pooled.numel() == 0:
        return math.inf
    pooled = pooled.to(torch.float64)
    below = pooled.sort(descending=True).values[math.floor(q * pooled.numel())]  # the (k+1)-th largest
    higher = pooled[pooled > below]
    return float(higher.min()) if higher.numel() else math.nextafter(float(pooled.max()), math.inf)


def calibrate_delta(modules: Iterable[ModuleInput], p: TadaParams) -> tuple[TadaParams, dict]:
    """The engine's first pass (SPEC §6): resolve ``delta: auto`` from the overlaps of every
    module's components, pooled over both adapters (one module in memory at a time).

    Returns the parameters with a numeric δ and the report's ``calibration`` entry. A given δ
    (or ``no_filter``) needs no pass and is returned as it is.
    """
    if p.delta != "auto":
        return p, {"delta": p.delta, "delta_source": "given"}
    if p.no_filter:
        return replace(p, delta=math.inf), {"delta": None, "delta_source": "auto (not needed: no_filter)"}
    pooled: list[torch.Tensor] = []
    for module in modules:
        with step("components"):
            found = module_overlaps(module, p.overlap_lambda)  # every adapter's components, pooled
        if found is not None:
            pooled.extend(found)
    values = torch.cat(pooled) if pooled else torch.zeros(0, dtype=torch.float64)
    delta = auto_delta(values, p.delta_drop)
    info = {"delta": delta, "delta_source": f"auto: q = {p.delta_drop} of the pooled overlaps",
            "delta_drop": p.delta_drop, "pooled_overlaps": int(values.numel()),
            "max_dropped": math.floor(p.delta_drop * values.numel())}
    return replace(p, delta=delta), info


# ---- Eq. 6 ----------------------------------------------------------------------------------

def component_ratios(T: Components, D: Components, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Component-level Eq. 1 (SPEC §6): one adapter's ΔW replaced by one rank-1 component.

    task i:   r_i = ‖ΔW^D h‖ / max(σ_i|v_iᵀh|, 1e-12·σ_i‖h‖)
    domain j: r_j = σ_j|v_jᵀh| / max(‖ΔW^T h‖, ε_T)
    """
    hn = float(h.norm())
    t_act = T.S * (T.V.T @ h).abs()
    d_act = D.S * (D.V.T @ h).abs()
    r_t = ratio(torch.full_like(t_act, delta_norm(D, h)), torch.maximum(t_act, EPS_REL * T.S * hn))
    eps_t = EPS_REL * float(T.S[0]) * hn
    r_d = ratio(d_act, torch.full_like(d_act, max(delta_norm(T, h), eps_t)))
    return r_t, r_d


# ---- filter ---------------------------------------------------------------------------------

def choose_kept(overlap: list[torch.Tensor], p: TadaParams, module: ModuleInput, sides: list[str]
                ) -> tuple[list[torch.Tensor], list[str]]:
    """Which components survive (Eq. 5's filter and its ablations): one mask per adapter (task
    first, then the domains named ``sides[1:]``), and notes."""
    notes: list[str] = []
    delta = p.delta
    assert not isinstance(delta, str), "delta 'auto' is resolved by calibrate_delta first"
    keep = [o < delta for o in overlap]
    if not p.filters:
        return [torch.ones_like(k) for k in keep], notes
    if p.filter_side == "task":
        keep[1:] = [torch.ones_like(k) for k in keep[1:]]
    if not any(k.any() for k in keep):
        notes.append("filter would drop every component: fell back to no_filter")
        keep = [torch.ones_like(k) for k in keep]
    if p.keep_high_overlap:
        return [overlap[0] >= delta, *((o >= delta) if p.filter_side == "both" else k
                                       for o, k in zip(overlap[1:], keep[1:]))], notes
    if p.random_filter:
        keep = [_random_keep(len(k), int((~k).sum()), p.seed, module.name, side) for k, side in zip(keep, sides)]
    return keep, notes


def energy_matched(S: torch.Tensor, keep: torch.Tensor, control: str, seed: int, name: str, side: str
                   ) -> torch.Tensor:
    """Per-component factors (on σ_i, shape [k]) that remove from one adapter the same energy
    E = Σ_{i dropped} σ_i² as the filter's mask ``keep`` does (issue #25's controls):
    ``scale``: every factor √(1 − E / Σσ²); ``random``: components in a seeded random order get
    factor 0 while the removed energy stays ≤ E, the next one √(1 − rest/σ²) so that exactly E is
    removed, the others 1. Either way Σ(1 − f_i²)σ_i² = E."""
    energy = S.double() ** 2
    dropped, total = float(energy[~keep].sum()), float(energy.sum())
    factors = torch.ones(len(S), dtype=torch.float64)
    if dropped <= 0 or total <= 0:
        return factors
    if control == "scale":
        return factors * math.sqrt(max(0.0, 1 - dropped / total))
    order = list(range(len(S)))
    random.Random(f"{seed}:{name}:{side}:energy").shuffle(order)
    rest = dropped
    for i in order:
        e = float(energy[i])
        if e <= rest:
            factors[i], rest = 0.0, rest - e
        else:
            factors[i] = math.sqrt(1 - rest / e)
            break
    return factors


def _random_keep(k: int, n_drop: int, seed: int, name: str, side: str) -> torch.Tensor:
    keep = torch.ones(k, dtype=torch.bool)
    keep[random.Random(f"{seed}:{name}:{side}").sample(range(k), n_drop)] = False
    return keep


# ---- the method -----------------------------------------------------------------------------

def _unchanged(module: ModuleInput, comps: list[Components], active: list[int], info: dict) -> ModuleResult:
    """A module where the task delta or every domain delta is zero: nothing to gate or filter, the
    non-zero deltas are taken unchanged (summed when several domains remain)."""
    sides = module.sides
    if comps[0].k == 0:
        kept = active or [1]
        info["notes"] = [f"task delta is zero: the domain delta{'s are' if len(kept) > 1 else ' is'} taken unchanged"]
        if len(kept) == 1:
            tr = truncate(comps[kept[0]], module.rank)
        else:
            tr = truncate(svd_of_weighted_components([(comps[i], torch.ones(comps[i].k, dtype=torch.float64))
                                                      for i in kept]), module.rank)
    else:
        info["notes"] = ["domain delta is zero: the task delta is taken unchanged" if len(sides) == 2
                         else "every domain delta is zero: the task delta is taken unchanged"]
        tr = truncate(comps[0], module.rank)
    info["rel_error"] = tr.rel_error
    return ModuleResult(tr.B, tr.A, info)


@register("tada", TadaParams, needs_probes=True, calibrate=calibrate_delta, summarize=lambda m: summarize(m),
          label="TaDA (ours)", row=20,
          reference="the TaDA paper, Algorithm 1 (SPEC §5-6)")
def tada(module: ModuleInput, p: TadaParams) -> ModuleResult:
    """TaDA: probe-gated, per-component weighted merge of the filtered SVD components, rank r.

    ``delta: auto`` is resolved by the engine's first pass over every module (``calibrate_delta``);
    called on one module alone, it is calibrated on that module's overlaps.
    """
    if p.delta == "auto":
        p, _ = calibrate_delta([module], p)
    tau = p.tau_table.tau(module.name) * p.tau_scale
    sides = module.sides
    with step("components"):
        comps = module_components(module)  # Eq. 4
    T = comps[0]
    info: dict = {"tau": tau, **{f"sigma_{side}": c.S.tolist() for side, c in zip(sides, comps)}}
    active = active_domains(comps)
    if T.k == 0 or not active:
        return _unchanged(module, comps, active, info)
    hg = module.h_general
    h_domains = [h for h in module.h_domains if h is not None]
    assert hg is not None and len(h_domains) == len(module.domains), \
        "the engine gives a method that needs probes every mean"
    probes = [(sides[i], h_domains[i - 1]) for i in active] + [("general", hg)]
    notes = [f"probe mean is zero ({n} probe)" for n, h in probes if float(h.norm()) == 0]

    with step("gating"):
        per_domain = []
        for i in active:  # Eqs. 1–3 and 6 for (T, D_k): Proposition 1 holds for each adapter separately
            D, hd = comps[i], h_domains[i - 1]
            s = calibrate(module_ratio(T, D, hd), module_ratio(T, D, hg))  # Eqs. 1–2
            alpha = gate(s, tau, p.beta)  # Eq. 3
            (rt_d, rd_d), (rt_g, rd_g) = component_ratios(T, D, hd), component_ratios(T, D, hg)
            s_t, s_d = calibrate(rt_d, rt_g), calibrate(rd_d, rd_g)  # Eq. 6's s_i
            a_t, a_d = gate(s_t, tau, p.beta), gate(s_d, tau, p.beta)  # Eq. 6
            if p.fixed_alpha is not None:
                a_t, a_d = torch.full_like(a_t, p.fixed_alpha), torch.full_like(a_d, p.fixed_alpha)
            elif p.layer_alpha:
                a_t, a_d = torch.full_like(a_t, float(alpha)), torch.full_like(a_d, float(alpha))
            per_domain.append(Gating(s, alpha, s_t, a_t, s_d, a_d))
        overlap = all_overlaps([T, *(comps[i] for i in active)], p.overlap_lambda)  # Eq. 5
        names = ["task", *(sides[i] for i in active)]  # the adapters' names in the filter's draws
        keep, filter_notes = choose_kept(overlap, p, module, names)
        # the task's components: the mean over domains of their α^(k); domain k's: 1 − α^(k) (/K: mean)
        a_task = per_domain[0].alpha_task if len(active) == 1 else torch.stack([d.alpha_task for d in per_domain]).mean(dim=0)
        share = len(active) if p.domain_combine == "mean" and len(active) > 1 else 1
        weights = [a_task, *((1 - d.alpha_domain) / share for d in per_domain)]  # / 1 is exact
        if p.energy_control != "none":  # the filter's energy, removed another way
            factors = [energy_matched(c.S, k, p.energy_control, p.seed, module.name, side)
                       for c, k, side in zip([T, *(comps[i] for i in active)], keep, names)]
            weights = [w * f.to(w.dtype) for w, f in zip(weights, factors)]
            keep = [f > 0 for f in factors]

    with step("merge"):
        parts = [(T.select(keep[0]), weights[0][keep[0]])]
        parts += [(comps[i].select(k), w[k]) for i, k, w in zip(active, keep[1:], weights[1:])]
        merged = svd_of_weighted_components(parts)  # Eq. 7
    with step("truncation"):
        tr = truncate(merged, module.rank)  # Eq. 8
    if len(sides) == 2:  # two adapters: the report's keys of the paper's setting
        g = per_domain[0]
        info.update({
            "s": float(g.s), "alpha": float(g.alpha),
            "s_task": g.s_task.tolist(), "alpha_task": g.alpha_task.tolist(), "overlap_task": overlap[0].tolist(),
            "kept_task": keep[0].nonzero().flatten().tolist(),
            "s_domain": g.s_domain.tolist(), "alpha_domain": g.alpha_domain.tolist(),
            "overlap_domain": overlap[1].tolist(),
            "kept_domain": keep[1].nonzero().flatten().tolist(),
        })
    else:
        info.update({
            "alpha": float(torch.stack([d.alpha for d in per_domain]).mean()),
            "s_by_domain": {sides[i]: float(d.s) for i, d in zip(active, per_domain)},
            "alpha_by_domain": {sides[i]: float(d.alpha) for i, d in zip(active, per_domain)},
            "alpha_task": a_task.tolist(), "overlap_task": overlap[0].tolist(),
            "kept_task": keep[0].nonzero().flatten().tolist(),
        })
        for side in sides[1:]:
            info.update({f"s_{side}": [], f"alpha_{side}": [], f"overlap_{side}": [], f"kept_{side}": []})
        for i, k, o, d in zip(active, keep[1:], overlap[1:], per_domain):
            info.update({f"s_{sides[i]}": d.s_domain.tolist(), f"alpha_{sides[i]}": d.alpha_domain.tolist(),
                         f"overlap_{sides[i]}": o.tolist(), f"kept_{sides[i]}": k.nonzero().flatten().tolist()})
    info["rel_error"] = tr.rel_error
    if notes + filter_notes:
        info["notes"] = notes + filter_notes
    return ModuleResult(tr.B, tr.A, info)


# ---- the report's summary (the ``summarize`` hook of the method spec) -------------------------

def summarize(modules: dict[str, dict]) -> dict:
    """TaDA's part of the report summary: the α distribution (mean, std, the fraction of modules
    where the task dominates) and what the overlap filter kept (:func:`filter_summary`)."""
    out: dict = {}
    alphas = [m["alpha"] for m in modules.values() if isinstance(m.get("alpha"), float)]
    if alphas:
        mean = sum(alphas) / len(alphas)
        out["alpha_mean"] = mean
        out["alpha_std"] = (sum((a - mean) ** 2 for a in alphas) / len(alphas)) ** 0.5
        out["task_dominant_fraction"] = sum(a >= 0.5 for a in alphas) / len(alphas)
    if any("kept_task" in m for m in modules.values()):
        domains = domain_sides(modules)
        out["kept_task"] = sum(len(m.get("kept_task", [])) for m in modules.values())
        out["kept_domain"] = sum(len(m.get(f"kept_{d}", [])) for m in modules.values() for d in domains)
        out["components_task"] = sum(len(m.get("sigma_task", [])) for m in modules.values())
        out["components_domain"] = sum(len(m.get(f"sigma_{d}", [])) for m in modules.values() for d in domains)
        out["filter"] = filter_summary(modules)
    return out


def domain_sides(modules: dict[str, dict]) -> list[str]:
    """The domain adapters' names in a TaDA report: ``domain`` (two adapters), or ``domain``,
    ``domain2``… (K domain adapters, SPEC §6b)."""
    first = next((m for m in modules.values() if "kept_task" in m), {})
    found = [k[len("kept_"):] for k in first if k.startswith("kept_domain")]
    return sorted(found, key=lambda side: int(side[len("domain"):] or 1))


def filter_summary(modules: dict[str, dict]) -> dict:
    """What TaDA's overlap filter (Eq. 5) kept, per adapter and per role: components kept / all
    and the fraction of the adapter's energy Σσ² kept; plus the overlap distribution of every
    compared component (p50/p95/p99/max). Modules that took one delta unchanged (the other
    zero) are left out: nothing was filtered there."""
    filtered = {n: m for n, m in modules.items() if "kept_task" in m}
    sides = ["task", *domain_sides(modules)]
    out: dict = {}
    for side in sides:
        per_role: dict[str, list[float]] = {}
        for m in filtered.values():
            sigma, kept = m[f"sigma_{side}"], m[f"kept_{side}"]
            acc = per_role.setdefault(m["role"], [0, 0, 0.0, 0.0])
            acc[0] += len(kept)
            acc[1] += len(sigma)
            acc[2] += sum(sigma[i] ** 2 for i in kept)
            acc[3] += sum(x ** 2 for x in sigma)
        total = [sum(a[i] for a in per_role.values()) for i in range(4)]
        out[side] = {"kept": total[0], "components": total[1],
                     "energy_kept": total[2] / total[3] if total[3] else 1.0,
                     "by_role": {role: {"kept": a[0], "components": a[1],
                                        "energy_kept": a[2] / a[3] if a[3] else 1.0}
                                 for role, a in sorted(per_role.items())}}
    pooled = [o for m in filtered.values() for side in sides for o in m[f"overlap_{side}"]]
    if pooled:  # a filtered module has ≥ 1 component per side: at least 2 values
        cuts = statistics.quantiles(pooled, n=100, method="inclusive")  # linear, as numpy's default
        out["overlaps"] = {"n": len(pooled), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(pooled)}
    return out
