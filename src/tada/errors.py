"""The one exception type a user sees: a mistake in their input, reported as one line (exit code 2)."""
from __future__ import annotations


class TadaError(Exception):
    """A user-facing error: bad input, mismatched adapters, unreadable files.

    The CLI prints ``error: <message>`` on stderr and exits with code 2; anything else is an
    internal error (exit code 1, traceback with ``--debug``).
    """
