"""Module role → threshold τ_m (paper Eq. 3, SPEC §5).

Roles come from a table of known architectures, matched on the module's dotted name:
Llama/Mistral/Qwen/Gemma ``q_proj,k_proj,v_proj,o_proj``; ViT/BERT/DINOv2
``query,key,value,attention.output.dense``; CLIP ``out_proj``; Falcon/Phi/GPT-NeoX ``dense`` under
the attention block; GPT-2 ``attn.c_proj``. Fused QKV modules (GPT-2 ``c_attn``, Falcon/NeoX
``query_key_value``, Phi-3 ``qkv_proj``) are one module with τ = 1.0. MLP and unknown modules:
τ = 1.0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import TadaError
from .options import closest

#: Default τ per role (paper §3.1: q,k 1.0; v 1.2; o 1.5).
DEFAULT_TAU = {"query": 1.0, "key": 1.0, "value": 1.2, "attn_out": 1.5, "qkv": 1.0, "mlp": 1.0, "other": 1.0}

_ATTN = r"(self_attn|self_attention|attention|attn|SelfAttention|EncDecAttention)"
# Order matters: the first pattern that matches the full module name wins.
_ROLE_TABLE: list[tuple[str, re.Pattern]] = [
    ("qkv", re.compile(r"(^|\.)(c_attn|query_key_value|qkv_proj|Wqkv|qkv)$")),
    ("query", re.compile(r"(^|\.)(q_proj|query|q_lin|" + _ATTN + r"\.q)$")),
    ("key", re.compile(r"(^|\.)(k_proj|key|k_lin|" + _ATTN + r"\.k)$")),
    ("value", re.compile(r"(^|\.)(v_proj|value|v_lin|" + _ATTN + r"\.v)$")),
    ("attn_out", re.compile(r"(^|\.)(o_proj|out_proj|out_lin|attention\.output\.dense|"
                            + _ATTN + r"\.(dense|c_proj|o))$")),
    ("mlp", re.compile(r"(^|\.)(gate_proj|up_proj|down_proj|fc1|fc2|c_fc|w1|w2|w3|"
                       r"dense_h_to_4h|dense_4h_to_h|intermediate\.dense|output\.dense|mlp\.\w+)$")),
]


def layer_of(module: str) -> int | None:
    """The layer index in a dotted module name (its first integer component), or None."""
    m = re.search(r"\.(\d+)\.", module)
    return int(m.group(1)) if m else None


def role_of(module: str) -> str:
    """The role of a module from its dotted name: query/key/value/attn_out/qkv/mlp/other."""
    for role, pattern in _ROLE_TABLE:
        if pattern.search(module):
            return role
    return "other"


@dataclass(frozen=True)
class TauTable:
    """τ per role, plus user overrides by module-name pattern (``re.search``), which win.

    ``global_tau`` (ablation "w/o module τ") replaces every value.
    """

    by_role: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TAU))
    by_pattern: dict[str, float] = field(default_factory=dict)
    global_tau: float | None = None
    given_roles: tuple[str, ...] = ()  # the roles the user overrode (checked against the modules)

    def tau(self, module: str) -> float:
        if self.global_tau is not None:
            return float(self.global_tau)
        for pattern, value in self.by_pattern.items():
            if re.search(pattern, module):
                return float(value)
        return float(self.by_role.get(role_of(module), 1.0))

    def check(self, modules: list[str]) -> None:
        """Refuse an override that changes nothing: a role no module has, or a pattern (a regex)
        that matches no module name — a typo such as ``atn_out`` would otherwise be ignored."""
        roles = sorted({role_of(m) for m in modules})
        for key in self.by_pattern:
            try:
                matched = any(re.search(key, m) for m in modules)
            except re.error as exc:
                raise TadaError(f"`tau` {key!r}: not a role and not a valid regular expression ({exc})") from None
            if not matched:
                hint = closest(key, [*DEFAULT_TAU, *sorted({m.rsplit('.', 1)[-1] for m in modules})])
                raise TadaError(f"`tau` {key!r} matches no module: not a role ({', '.join(DEFAULT_TAU)}) and no "
                                f"module name contains it{hint}")
        for key in self.given_roles:
            if key not in roles:
                raise TadaError(f"`tau` {key!r}: no module here has that role (roles here: {', '.join(roles)})")

    @classmethod
    def from_overrides(cls, overrides: dict[str, float] | None, global_tau: float | None = None) -> TauTable:
        """Overrides keyed by a role name (``value``, ``attn_out``…) or a module-name pattern."""
        by_role: dict[str, float] = dict(DEFAULT_TAU)
        by_pattern: dict[str, float] = {}
        for key, value in (overrides or {}).items():
            (by_role if key in DEFAULT_TAU else by_pattern)[key] = float(value)
        return cls(by_role, by_pattern, global_tau, tuple(k for k in overrides or {} if k in DEFAULT_TAU))
