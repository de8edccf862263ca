"""The layer contracts of docs/architecture.md, checked by import-linter (``lint-imports``): they
hold on the tree, and an import from a lower layer up to a higher one breaks them."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e .[test])")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(root / "src"),
                                                                            "PATH": "/usr/bin:/bin"})


def test_the_tree_keeps_every_contract():
    run = lint(ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 kept, 0 broken" in run.stdout


@pytest.mark.parametrize("module, upward", [
    ("src/tada/methods/ties.py", "from ..bench import config as _config  # noqa"),   # methods → bench
    ("src/tada/eval/stats.py", "from ..api import merge as _merge  # noqa"),         # eval → api
    ("src/tada/lowrank.py", "from . import engine as _engine  # noqa"),              # math → engine
    ("src/tada/eval/datasets/types.py", "from . import registry as _r  # noqa"),     # types → registry
])
def test_an_upward_import_breaks_the_contracts(tmp_path, module, upward):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{upward}\n", encoding="utf-8")
    run = lint(tmp_path)
    assert run.returncode != 0 and "BROKEN" in run.stdout, run.stdout[-2000:]
