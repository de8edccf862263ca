"""The ``tada`` command line: one module per command, each parsing its options, calling the
library and printing the result (:mod:`tada.cli.app` holds the group and the error handling,
:mod:`tada.cli.options` the flags generated from the options model)."""
from __future__ import annotations

from . import analyze, bench, card, demo, evaluate, export, info, merge, plot, probe, push, train  # noqa: F401  (registration)
from .app import cli, main

__all__ = ["cli", "main"]
