"""Behaviour pinned across refactorings: every method's merged files (weights, config, report) on a
fixed pair must stay byte-identical to what main wrote before the options model, the cached-grid
core and the cli/ package (issue #17). The hashes in golden/same_bytes.json were recorded by running
this file as a script against commit 065e083 (``PYTHONPATH=<that checkout>/src python
tests/test_same_bytes.py``); report paths are written relative to the test's folder first, and
the report is compared without the entries added on purpose since (:data:`ADDED`) and without
its ``versions`` (the installed libraries', which a fresh venv may resolve differently: they describe
the environment, not the merge); its floats are compared at 9 significant digits (:func:`rounded`;
re-recorded from 065e083 on an Intel Xeon without AVX-512, where the last bits of the truncation
errors differ from the AMD EPYC of the earlier recording — the weights' bytes did not change)."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import random_stats, write_adapter  # noqa: E402

import tada  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "same_bytes.json"
METHODS = ("linear", "task_arithmetic", "cat", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune", "tada")
SHAPES = {f"model.layers.{i}.self_attn.{m}": s for i in range(2) for m, s in
          (("q_proj", (48, 64)), ("k_proj", (32, 64)), ("v_proj", (32, 64)), ("o_proj", (64, 48)))}
FILES = ("adapter_model.safetensors", "adapter_config.json", "tada_report.json")


def merged_hashes(root: Path) -> dict[str, dict[str, str]]:
    task = write_adapter(root / "task", SHAPES, r=6, alpha=12, seed=20)
    domain = write_adapter(root / "domain", SHAPES, r=6, alpha=12, seed=21)
    stats = {"domain_stats": random_stats(SHAPES, seed=5), "general_stats": random_stats(SHAPES, seed=6)}
    out = {}
    for method in METHODS:
        folder = root / "out" / method
        tada.merge(task, domain, method=method, out=folder, progress=False, **(stats if method == "tada" else {}))
        out[method] = {f: hashlib.sha256(normalized(folder / f, root)).hexdigest() for f in FILES}
    return out


#: Report entries added on purpose since the recording (each with its issue); everything else
#: must stay as it was.
ADDED = {"params": ("domain_combine",  # #19: how K domain adapters combine (no effect with one)
                   "tau_scale",  # #25: the factor on every τ that tada tune searches (1: no effect)
                   "energy_control")}  # #25: the filter's energy-matched controls ("none": no effect)


def normalized(path: Path, root: Path) -> bytes:
    """The file's bytes with the test's folder written as ROOT; a report is re-serialised
    canonically without the :data:`ADDED` entries (the weights and config stay raw bytes)."""
    data = path.read_bytes().replace(str(root).encode(), b"ROOT")
    if path.name != "tada_report.json":
        return data
    report = json.loads(data)
    report.pop("versions", None)
    for key, names in ADDED.items():
        for name in names:
            report.get(key, {}).pop(name, None)
    return json.dumps(rounded(report), sort_keys=True, indent=1).encode()


def rounded(obj):
    """Floats at 9 significant digits: the report's measured numbers (truncation errors, scores)
    differ in their last bits between CPUs (LAPACK's kernels round differently on AVX2 and
    AVX-512), the merge's decisions and the weights do not."""
    if isinstance(obj, float):
        return float(f"{obj:.9g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def hashes(tmp_path_factory):
    return merged_hashes(tmp_path_factory.mktemp("same-bytes"))


@pytest.mark.parametrize("method", METHODS)
def test_merged_files_are_byte_identical_to_before_the_refactoring(hashes, method):
    assert hashes[method] == json.loads(GOLDEN.read_text())["hashes"][method]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps({"_about": __doc__.split("\n")[0], "hashes": merged_hashes(Path(tmp))}, indent=1,
                         sort_keys=True))
