"""tada: merge a task LoRA adapter and a domain LoRA adapter into one PEFT LoRA adapter.

TaDA (calibrated probe gating + per-component subspace-aware merging, arXiv 2606.05016) and the
classic baselines (linear, task arithmetic, TIES, DARE, magnitude pruning, SVD, concatenation).
"""
from __future__ import annotations

from ._version import __version__
from .api import extract_probes, merge
from .errors import TadaError
from .methods import method_names

__all__ = ["merge", "extract_probes", "method_names", "TadaError", "__version__"]
