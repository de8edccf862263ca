"""The Python API: what the CLI and notebooks call, the same way.

Merging (:mod:`.merging`): :func:`merge`, :func:`extract_probes`; evaluating
(:mod:`.evaluating`): :func:`evaluate`, :func:`evaluate_images`, :func:`export_base`.

>>> result = tada.merge("task_adapter/", "domain_adapter/", method="tada", base="base_model/",
...                     domain_probe="domain.txt", general_probe="general.txt", out="merged/")
>>> result.report["summary"]
"""
from __future__ import annotations

from .evaluating import default_eval_path, evaluate, evaluate_images, export_base
from .merging import extract_probes, merge

__all__ = ["merge", "extract_probes", "evaluate", "evaluate_images", "export_base", "default_eval_path"]
