"""README.md's Python and YAML examples run offline as written (issue #18)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_yaml_block_is_the_shipped_file():
    assert blocks("yaml")[0] == (ROOT / "examples" / "merge.yaml").read_text(encoding="utf-8")


def copy_examples(to: Path) -> dict[str, str]:
    """A fresh folder holding the examples as a clone does; the environment the blocks run in
    (this interpreter's venv first on PATH, as `. .venv/bin/activate` makes it; a private cache)."""
    for part in ("adapters", "probes", "data/eval"):
        shutil.copytree(ROOT / "examples" / part, to / "examples" / part)
    shutil.copy(ROOT / "examples" / "merge.yaml", to / "examples" / "merge.yaml")
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TADA_CACHE": str(to / "cache")}


def test_the_bash_block_uses_only_shipped_files():
    """Every examples/ path the Use block names exists (the slow test runs it)."""
    (block,) = blocks("bash")[1:]
    for path in re.findall(r"\$ex/(\S+)", block):
        assert (ROOT / "examples" / path).exists(), path


@pytest.mark.slow
def test_the_use_block_runs_as_written(tmp_path):
    """README's `Use` bash block, every line, offline, from a copy of the repository."""
    env = copy_examples(tmp_path)
    (block,) = blocks("bash")[1:]
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True,
                         text=True, timeout=1800, env=env)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    for out in ("merged", "merged-ties", "merged-k", "merged-stats"):
        assert (tmp_path / out / "adapter_model.safetensors").is_file(), out
        assert (tmp_path / out / "README.md").is_file(), out
    assert json.loads((tmp_path / "merge.json").read_text())["method"] == "tada"
    card = (tmp_path / "merged" / "README.md").read_text(encoding="utf-8")
    assert "## Evaluation" in card
    for part in ("content", "compliance"):  # a format record: both rates
        assert f"| examples/data/eval/domain_trained_format.jsonl | format: {part} | 0 |" in card
    assert (tmp_path / "alpha.png").is_file() and (tmp_path / "alpha.svg").is_file()
    assert list((tmp_path / "lm-eval-tasks").glob("*.yaml"))
    assert (tmp_path / "smollm2-hf" / "config.json").is_file()


@pytest.mark.slow
def test_python_and_yaml_examples_run_from_a_copy_of_the_repository(tmp_path):
    """In a fresh folder holding the examples (as a clone does), each block runs as written."""
    env = copy_examples(tmp_path)
    for code in blocks("python"):
        run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=1800, env=env)
        assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "merged" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "merged-k" / "README.md").is_file()
    run = subprocess.run([sys.executable, "-m", "tada", "merge", "--config", "examples/merge.yaml", "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "merged-yaml" / "tada_report.json").is_file()
