"""Hub ids resolve through huggingface_hub's cache (tested offline with a cache laid out as the hub does)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import write_adapter


def test_hub_id_with_revision_offline(tmp_path):
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--task-lora"
    snap = repo / "snapshots" / commit
    write_adapter(tmp_path / "src")
    shutil.copytree(tmp_path / "src", snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    code = ("import json, tada; from tada.adapters import load_adapter;"
            f"a = load_adapter('someone/task-lora', revision='{commit}'); b = load_adapter('someone/task-lora');"
            "print(json.dumps([str(a.path), len(a.module_names), str(b.path)]))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    path, n, path_main = json.loads(run.stdout)
    assert path == str(snap) == path_main and n == 6
    missing = subprocess.run([sys.executable, "-m", "tada.cli", "inspect", "someone/other-lora"],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "neither a local folder nor reachable" in missing.stderr
