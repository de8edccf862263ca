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


def use_block() -> str:
    """The README's "Use" block: the bash block that starts in its own work folder."""
    return next(b for b in blocks("bash") if b.startswith("mkdir -p work"))


def test_the_bash_block_uses_only_shipped_files():
    """Every examples/ path the Use block names exists (the slow test runs it)."""
    block = use_block()
    for path in re.findall(r"\$ex/(\S+)", block):
        assert (ROOT / "examples" / path).exists(), path


def test_the_use_block_writes_under_one_ignored_folder():
    """The Use block starts in `work/`, which .gitignore covers, and reads the examples from there."""
    block = use_block()
    assert block.startswith("mkdir -p work && cd work && ex=../examples")
    assert "/work/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "cd " not in block.split("\n", 1)[1]


@pytest.mark.slow
def test_the_use_block_runs_as_written(tmp_path):
    """README's `Use` bash block, every line, offline, from a copy of the repository."""
    env = copy_examples(tmp_path)
    block = use_block()
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True,
                         text=True, timeout=1800, env=env)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "examples", "work"]  # nothing else
    work = tmp_path / "work"
    for out in ("merged", "merged-ties", "merged-k", "merged-stats"):
        assert (work / out / "adapter_model.safetensors").is_file(), out
        assert (work / out / "README.md").is_file(), out
    assert json.loads((work / "merge.json").read_text())["method"] == "tada"
    card = (work / "merged" / "README.md").read_text(encoding="utf-8")
    assert "## Evaluation" in card
    for part in ("content", "compliance"):  # a format record: both rates
        assert f"| ../examples/data/eval/domain_trained_format.jsonl | format: {part} | 0 |" in card
    assert (work / "alpha.png").is_file() and (work / "alpha.svg").is_file()
    assert list((work / "lm-eval-tasks").glob("*.yaml"))
    assert (work / "smollm2-hf" / "config.json").is_file()


def lm_eval_command() -> list[str] | None:
    """The `lm_eval` executable, or this interpreter running lm_eval's module where only that is
    importable (e.g. installed with `pip install --target` on PYTHONPATH); None without lm-eval."""
    import importlib.util
    import shutil as sh

    if sh.which("lm_eval"):
        return ["lm_eval"]
    return [sys.executable, "-m", "lm_eval"] if importlib.util.find_spec("lm_eval") else None


@pytest.mark.slow
def test_the_lm_eval_command_agrees_with_tada_eval(tmp_path):
    """README's lm_eval command as written (plus --log_samples to read its predictions), on the
    exported embedded base, a merged adapter and the exported task: the same prediction as `tada
    eval --scoring cloze --shots 0 --first 20` on every question, and the same acc/acc_norm."""
    runner = lm_eval_command()
    if runner is None:
        pytest.skip("lm-eval is not installed (pip install lm-eval==0.4.13)")
    env = {**copy_examples(tmp_path), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    work = tmp_path / "work"
    work.mkdir()
    ex = "../examples"
    setup = (f"tada merge --task {ex}/adapters/task-format --domain {ex}/adapters/domain --method linear --out merged/ "
             f"--quiet\ntada datasets --export-lm-eval lm-eval-tasks {ex}/data/eval/domain_trained.jsonl\n"
             "tada export-base smollm2-hf/\n")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", setup], cwd=work, capture_output=True, text=True,
                         timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    config = json.loads((work / "smollm2-hf" / "config.json").read_text())
    assert "quantization_config" not in config  # lm-eval's hf model raised a ValueError on it
    lm_block = next(b for b in blocks("bash") if "\nlm_eval " in "\n" + b)
    (command,) = [line for line in lm_block.splitlines() if line.startswith("lm_eval ")]
    args = command.split()[1:] + ["--log_samples", "--output_path", "lm-out"]
    run = subprocess.run(runner + args, cwd=work, capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    (samples_file,) = (work / "lm-out").rglob("samples_tada_domain_trained_*.jsonl")
    samples = sorted((json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"])
    run = subprocess.run([sys.executable, "-m", "tada", "eval", "--base", "smollm2-hf/", "--adapter", "merged/",
                          "--dataset", f"{ex}/data/eval/domain_trained.jsonl", "--scoring", "cloze", "--shots", "0",
                          "--first", "20", "--out", "tada.jsonl"], cwd=work, capture_output=True, text=True,
                         timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    preds = [json.loads(line) for line in (work / "tada.jsonl").read_text().splitlines()]
    assert len(samples) == len(preds) == 20
    for p, s in zip(preds, samples):
        lls = [float(ll) for ll, _ in s["filtered_resps"]]
        assert p["id"] == s["doc"]["id"]
        assert p["predicted"] == max(range(len(lls)), key=lls.__getitem__), p["id"]
        assert (p["correct"], p["correct_norm"]) == (s["acc"] == 1.0, s["acc_norm"] == 1.0), p["id"]


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


def llama_completion() -> str | None:
    """llama.cpp's ``llama-completion``: on PATH, else the one built from the llama.cpp sources
    that the installed ``llama-cpp-python`` vendors (its PyPI sdist; cmake and a C++ compiler;
    about 10-30 min once on 2 cores), kept in ``$LLAMA_CPP_HOME`` (default
    ``~/.cache/llama.cpp-build/llama-cpp-python-<version>``). None when neither is possible."""
    import tarfile
    import tempfile

    if shutil.which("llama-completion"):
        return shutil.which("llama-completion")
    try:
        import llama_cpp
    except ImportError:
        return None
    home = Path(os.environ.get("LLAMA_CPP_HOME", Path.home() / ".cache" / "llama.cpp-build"
                               / f"llama-cpp-python-{llama_cpp.__version__}"))
    binary = home / "bin" / "llama-completion"
    if binary.is_file():
        return str(binary)
    if not (shutil.which("cmake") and shutil.which("c++")):
        return None
    with tempfile.TemporaryDirectory(prefix="llama-cpp-src-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                        f"llama-cpp-python=={llama_cpp.__version__}", "-d", tmp], check=True, timeout=600)
        (sdist,) = Path(tmp).glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        (source,) = Path(tmp).glob("llama_cpp_python-*/vendor/llama.cpp")
        build = Path(tmp) / "build"
        subprocess.run(["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
                        "-DLLAMA_OPENSSL=OFF", "-DBUILD_SHARED_LIBS=OFF",
                        # portable, as llama-cpp-python's wheels: a native build on an AMX CPU (this
                        # 2-core Xeon) segfaults in its AMX weight repacking, with or without a LoRA
                        "-DGGML_NATIVE=OFF"], check=True, capture_output=True,
                       timeout=600)
        subprocess.run(["cmake", "--build", str(build), "--target", "llama-completion", "-j", str(os.cpu_count())],
                       check=True, capture_output=True, timeout=5400)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build / "bin" / "llama-completion", binary)
    return str(binary)


@pytest.mark.slow
def test_the_llama_cpp_command_runs_as_written(tmp_path):
    """README's llama.cpp block as written, in `work/` after a merge and `tada export-gguf`: llama.cpp's
    own command-line tool loads the embedded base GGUF with our LoRA GGUF and writes the same greedy
    continuation as llama.cpp's Python binding (the slow test of tests/test_gguf_lora.py ties that
    one to PeftModel); the LoRA changes the answer (the base alone writes something else)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    exe = llama_completion()
    if exe is None:
        pytest.skip("llama-completion is not on PATH and cannot be built (llama-cpp-python, cmake, c++)")
    env = copy_examples(tmp_path)
    env["PATH"] = f"{Path(exe).parent}{os.pathsep}{env['PATH']}"
    work = tmp_path / "work"
    work.mkdir()
    setup = ("tada merge --task ../examples/adapters/task-format --domain ../examples/adapters/domain --method linear "
             "--weights 0.8,0.2 --out merged/ --quiet\ntada export-gguf merged/ merged.gguf\n")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", setup], cwd=work, capture_output=True, text=True,
                         timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    block = next(b for b in blocks("bash") if "\nllama-completion " in "\n" + b)
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    prompt = re.search(r"-p \$'(.*)'", block).group(1).replace("\\n", "\n")
    assert run.stdout.startswith(prompt), run.stdout[:500]
    cli_answer = run.stdout[len(prompt):].strip()
    from tada.models import smollm2_gguf

    spec = smollm2_gguf()
    base = str(Path(spec.path) / str(spec.gguf_file))

    def binding(lora: str | None) -> str:
        kw = {"lora_path": lora} if lora else {}
        llm = llama_cpp.Llama(model_path=base, n_ctx=512, n_threads=1, seed=0, verbose=False, **kw)
        return llm.create_completion(prompt, max_tokens=24, temperature=0.0)["choices"][0]["text"].strip()

    with_lora = binding(str(work / "merged.gguf"))
    assert cli_answer == with_lora, (cli_answer, with_lora)
    assert cli_answer != binding(None)
