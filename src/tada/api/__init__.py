"""The Python API: what the CLI and notebooks call, the same way.

Merging (:mod:`.merging`): :func:`merge`, :func:`extract_probes`; evaluating
(:mod:`.evaluating`): :func:`evaluate`, :func:`evaluate_images`, :func:`export_base`.

>>> result = tada.merge("task_adapter/", "domain_adapter/", method="tada", base="base_model/",
...                     domain_probe="domain.txt", general_probe="general.txt", out="merged/")
>>> result.report["summary"]
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .evaluating import default_eval_path, evaluate, evaluate_images, export_base
    from .merging import extract_probes, merge

__all__ = ["merge", "extract_probes", "evaluate", "evaluate_images", "export_base", "default_eval_path"]

#: Each name's module, imported on first use: a merge does not import the evaluation stack
#: (transformers' model code, datasets), which it never needs.
_LAZY = {"merge": "merging", "extract_probes": "merging", "evaluate": "evaluating",
         "evaluate_images": "evaluating", "export_base": "evaluating", "default_eval_path": "evaluating"}


__getattr__ = lazy_attributes(__name__, _LAZY)
