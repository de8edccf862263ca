"""Outputs survive SIGKILL and concurrent writers; mutated adapter files give a clean error or a
correct merge, never a crash."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tada
from tada.errors import TadaError

from conftest import SHAPES, write_adapter

WRITER = textwrap.dedent("""
    import sys, torch
    from tada.adapters import write_adapter
    tag = sys.argv[2]
    tensors = {f"t{i}": torch.full((512, 512), float(i)) for i in range(48)}  # ~50 MB: a slow write
    write_adapter(sys.argv[1], tensors, {"tag": tag}, force=True)
""")


def complete(folder) -> str | None:
    """The tag of a complete output folder, or None if the folder is absent."""
    if not folder.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as f:
        assert len(list(f.keys())) == 48
    return json.loads((folder / "adapter_config.json").read_text())["tag"]


@pytest.mark.parametrize("after", [None, 0.0, 0.02, 0.1, 0.3])
def test_sigkill_leaves_previous_or_new_complete_output(tmp_path, after):
    """Killed before the write starts (None) or at several moments after its temporary folder
    appears: the output is always the previous complete folder or the new complete one."""
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-c", WRITER, str(out), "old"], check=True)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), "new"])
    if after is not None:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert complete(out) in ("old", "new")
    # the next writer cleans up what the killed one left behind
    subprocess.run([sys.executable, "-c", WRITER, str(out), "next"], check=True)
    assert complete(out) == "next"
    assert [p.name for p in tmp_path.iterdir() if p.name != ".out.lock"] == ["out"]


def test_concurrent_writers_do_not_interleave(tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(out), f"w{i}"]) for i in range(3)]
    assert all(p.wait() == 0 for p in procs)
    assert complete(out) in ("w0", "w1", "w2")
    assert [p.name for p in tmp_path.iterdir() if p.name != ".out.lock"] == ["out"]


@pytest.fixture(scope="module")
def valid_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return write_adapter(root / "task"), write_adapter(root / "domain", seed=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_adapter_file_is_clean_error_or_correct_merge(tmp_path_factory, valid_pair, data):
    task, domain = valid_pair
    raw = (domain / "adapter_model.safetensors").read_bytes()
    n = data.draw(st.integers(1, 8))
    buf = bytearray(raw)
    for _ in range(n):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    folder = tmp_path_factory.mktemp("mutant")
    (folder / "adapter_config.json").write_text((domain / "adapter_config.json").read_text())
    (folder / "adapter_model.safetensors").write_bytes(bytes(buf))
    try:
        res = tada.merge(task, folder, method="svd", progress=False)
    except TadaError as exc:
        assert "\n" not in str(exc)
        return
    for t in res.tensors.values():  # a merge that went through is a finite, well-formed adapter
        assert bool(t.isfinite().all())
    assert set(res.report["modules"]) == set(SHAPES)
