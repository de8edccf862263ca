"""Merge methods: one small unit per method, registered by name, each declaring its parameters
(:mod:`tada.methods.base` holds the shared types and the registry; each method module registers
itself when imported, which this package does once)."""
from __future__ import annotations

from . import dare, linear, magnitude_prune, svd, tada, ties  # noqa: F401  (registration)
from ..errors import TadaError
from .base import (REGISTRY, Calibrate, MethodSpec, ModuleInput, ModuleResult, check_weights, make_params,
                   register)

__all__ = ["REGISTRY", "Calibrate", "MethodSpec", "ModuleInput", "ModuleResult", "check_weights", "get_method",
           "make_params", "method_names", "register"]


def get_method(name: str) -> MethodSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise TadaError(f"unknown method {name!r}; choose one of {', '.join(sorted(REGISTRY))}") from None


def method_names() -> list[str]:
    return sorted(REGISTRY)
