"""The example files shipped in the repository (``examples/``): adapters, probes, data."""
from __future__ import annotations

from pathlib import Path

from .errors import TadaError


def examples_root(examples_dir: str | None) -> Path:
    root = Path(examples_dir) if examples_dir else Path(__file__).resolve().parents[2] / "examples"
    needed = [root / "adapters" / "task-format", root / "adapters" / "domain", root / "probes" / "domain.txt",
              root / "probes" / "general.txt"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise TadaError(f"example files missing ({missing[0]}); run from a clone of the repository "
                        "or pass `examples_dir`")
    return root
