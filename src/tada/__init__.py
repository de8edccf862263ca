"""tada: merge a task LoRA adapter and a domain LoRA adapter into one PEFT LoRA adapter.

TaDA (calibrated probe gating + per-component subspace-aware merging, arXiv 2606.05016) and the
classic baselines (linear, task arithmetic, TIES, DARE, magnitude pruning, SVD, concatenation).
"""
from __future__ import annotations

__version__ = "0.1.0"

from .api import extract_probes, merge  # noqa: E402
from .errors import TadaError  # noqa: E402
from .methods import method_names  # noqa: E402

__all__ = ["merge", "extract_probes", "method_names", "TadaError", "__version__"]
