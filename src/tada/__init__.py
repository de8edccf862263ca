"""tada: merge a task LoRA adapter and a domain LoRA adapter into one PEFT LoRA adapter.

TaDA (calibrated probe gating + per-component subspace-aware merging, arXiv 2606.05016) and the
classic baselines (linear, task arithmetic, TIES, DARE, magnitude pruning, SVD, concatenation).

``tada.merge`` and friends import torch on first use (deferred on purpose: ``tada --help`` and
``import tada.errors`` start without it). Inside the package, tada's own modules are imported at
module top; the heavy third-party libraries a single path needs (transformers, peft, matplotlib,
onnx, scikit-learn, datasets, huggingface_hub) are imported inside that path's functions, on
purpose, so that the CLI's quick commands and the math layers load without them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from ._version import __version__
from .errors import TadaError

if TYPE_CHECKING:
    from .api import evaluate, export_base, extract_probes, merge
    from .bench.tune import tune
    from .methods import method_names

__all__ = ["merge", "extract_probes", "evaluate", "export_base", "tune", "method_names", "TadaError", "__version__"]

_LAZY = {"merge": "api.merging", "extract_probes": "api.merging", "evaluate": "api.evaluating",
         "export_base": "api.evaluating", "tune": "bench.tune", "method_names": "methods"}


__getattr__ = lazy_attributes(__name__, _LAZY)
