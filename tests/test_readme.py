"""README.md's Python and YAML examples run offline as written (issue #18)."""
from __future__ import annotations

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


@pytest.mark.slow
def test_python_and_yaml_examples_run_from_a_copy_of_the_repository(tmp_path):
    """In a fresh folder holding the examples (as a clone does), each block runs as written."""
    shutil.copytree(ROOT / "examples" / "adapters", tmp_path / "examples" / "adapters")
    shutil.copytree(ROOT / "examples" / "probes", tmp_path / "examples" / "probes")
    shutil.copy(ROOT / "examples" / "merge.yaml", tmp_path / "examples" / "merge.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
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
