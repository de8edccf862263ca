"""The ``tada`` command line: one module per command, each parsing its options, calling the
library and printing the result (:mod:`tada.cli.app` holds the group and the error handling,
:mod:`tada.cli.options` the flags generated from the options model)."""
from __future__ import annotations

from .app import cli, main  # the commands' modules load when a command is looked up (app.COMMANDS)

__all__ = ["cli", "main"]
