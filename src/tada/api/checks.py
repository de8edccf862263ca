"""Argument checks of ``tada merge`` and ``tada probe`` that need neither torch nor a model.

A mistake in the arguments (an unknown option or method, a bad value, a missing adapter folder, a
missing or empty probe file, an output that exists) is found here in a fraction of a second, before
the command imports torch or loads a base model; :func:`tada.merge` and
:func:`tada.extract_probes` find the same mistakes with the same one-line messages when called
directly.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._util import as_list
from ..errors import TadaError
from ..io.files import read_probe_items
from ..io.hub import CONFIG_NAME, is_hub_id
from ..methods import get_method
from ..methods.base import make_params
from ..options import EvalOptions, MergeOptions, ProbeOptions, build



def check_adapter_source(source: Any) -> None:
    """A local adapter folder that is not there (or is a file, or holds no adapter_config.json);
    a hub id is left to the loader (it needs the network)."""
    if not isinstance(source, (str, os.PathLike)):
        return
    p, s = Path(source), str(source)
    if p.is_dir():
        if not (p / CONFIG_NAME).is_file():
            raise TadaError(f"{p}: no {CONFIG_NAME} (is this a PEFT adapter folder?)")
    elif p.exists():
        raise TadaError(f"adapter must be a folder with {CONFIG_NAME}, not a file: {source}")
    elif s.count("/") != 1 or s.startswith((".", "/")) or not is_hub_id(s):
        raise TadaError(f"adapter folder not found: {source}")


def check_merge_arguments(task: Any, domain: Any, method: str | None, params: Any, options: dict) -> None:
    """What :func:`tada.merge` would refuse in its arguments before reading any weights."""
    if task is None or not domain:
        raise TadaError("`task` and `domain` are required (as arguments or in `config`)")
    o: MergeOptions = build(MergeOptions, options, "tada.merge")
    domains = as_list(domain)
    spec = get_method(method or "tada")
    if params is None or isinstance(params, dict):
        make_params(spec, params, n_inputs=1 + len(domains))
    for source in (task, *domains):
        check_adapter_source(source)
    for probe in (*as_list(o.domain_probe), o.general_probe):
        if isinstance(probe, (str, os.PathLike)):
            read_probe_items(probe)
    for stats in (*as_list(o.domain_stats), o.general_stats):
        if isinstance(stats, (str, os.PathLike)) and not Path(stats).is_file():
            raise TadaError(f"probe statistics file not found: {stats}")
    if o.out is not None and os.path.lexists(o.out):
        from ..adapters import check_output  # numpy and safetensors: only when there is something to check

        check_output(o.out, o.force)


def check_probe_arguments(probe: str | os.PathLike, options: dict) -> None:
    """What :func:`tada.extract_probes` would refuse before loading the base model."""
    o: ProbeOptions = build(ProbeOptions, options, "tada.extract_probes")
    if o.adapter is not None:
        check_adapter_source(o.adapter)
    read_probe_items(probe)


def check_eval_arguments(options: dict) -> None:
    """What :func:`tada.evaluate` would refuse in its options before loading a model or a dataset:
    the options model's checks (bounds of ``limit``/``first``, and that they exclude each other)
    and the adapter folder."""
    o: EvalOptions = build(EvalOptions, options, "tada.evaluate")
    if o.adapter is not None:
        check_adapter_source(o.adapter)
