"""`tada --help` starts without torch: commands load lazily (tada.cli.app.COMMANDS)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from tada.cli import cli
from tada._util import free_cores
from tada.cli.app import COMMANDS


def test_the_lazy_help_table_matches_every_command():
    ctx = click.Context(cli)
    for name, (module, short_help) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.get_short_help_str(80) == short_help, name
        assert command.callback.__module__ == f"tada.cli.{module}"


def test_help_imports_neither_torch_nor_transformers():
    code = ("import sys\nfrom tada.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "merge" in run.stdout and "LOADED []" in run.stdout, run.stdout + run.stderr


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args, shown", [
    (["methods"], "ties"),
    (["datasets"], "medmcqa_evals"),
    (["inspect", str(ROOT / "examples" / "adapters" / "domain")], "q_proj"),
])
def test_quick_commands_import_neither_torch_nor_transformers(args, shown):
    """`tada methods`, `datasets` and `inspect` start in well under a second: the method registry,
    the dataset registries and an adapter's norms (numpy) need no torch (tada._lazy)."""
    code = (f"import sys\nfrom tada.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert shown in run.stdout and "LOADED []" in run.stdout, run.stdout[-500:] + run.stderr


def test_python_m_tada_runs_the_cli():
    run = subprocess.run([sys.executable, "-m", "tada", "--version"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "version" in run.stdout


def test_threads_option_sets_torch_threads_once():
    code = ("import torch\nfrom tada.cli import main\ntry:\n    main(['--threads', '1', 'methods'])\nexcept SystemExit:\n"
            "    pass\nprint('THREADS', torch.get_num_threads())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "THREADS 1" in run.stdout, run.stderr
    code = "import os\nfrom tada.cli.app import set_threads\nos.environ.pop('OMP_NUM_THREADS', None)\n" \
           "print('N', set_threads(None), len(os.sched_getaffinity(0)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    n, cores = map(int, run.stdout.split()[1:])
    assert 1 <= n <= cores, run.stdout  # the free ones: how many depends on the load now (below)


@pytest.mark.parametrize("loadavg, cores, free", [
    ("0.05 0.10 0.20 1/300 999", 2, 2),   # idle: this process is the one runnable task
    ("2.10 1.90 1.50 3/300 999", 2, 1),   # two busy processes for a minute and now: one thread
    ("2.10 1.90 1.50 1/300 999", 2, 2),   # the load just ended: nothing else runnable now
    ("0.10 0.20 0.20 5/300 999", 2, 2),   # a passing spike: the minute's average is low
    ("1.40 1.20 1.00 2/300 999", 8, 7),   # one busy process on eight cores
    ("9.00 9.00 9.00 12/300 999", 4, 1),  # more load than cores: still one
    ("garbage", 4, 4),                    # unreadable: every core
])
def test_free_cores_leaves_the_busy_ones(loadavg, cores, free):
    assert free_cores(cores, loadavg) == free


# ---------------------------------------------------------------- fast paths (issue #26)

HEAVY = ("torch", "transformers", "peft")
EXAMPLES = ROOT / "examples" / "adapters"


def timed(args: list[str], cwd: Path, tries: int = 3, heavy: tuple[str, ...] = HEAVY) -> tuple[float, list[str], str]:
    """(CPU seconds `main(args)` took in a fresh interpreter, the heavy modules it imported, its
    output); the fastest of up to ``tries`` runs. CPU time, not wall time: on a quiet machine the two
    are the same (start-up is one thread), and a machine busy with other work (a test run beside a
    benchmark) slows the wall clock, not the work done."""
    code = ("import sys, time\nt = time.process_time()\nfrom tada.cli import main\ntry:\n"
            f"    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print('SECONDS', time.process_time() - t)\n"
            f"print('LOADED', ','.join(sorted(m for m in {heavy!r} if m in sys.modules)))")
    best, loaded, text = float("inf"), [], ""
    for _ in range(tries):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
        lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line.startswith(("SECONDS", "LOADED")))
        seconds, loaded, text = float(lines["SECONDS"]), [m for m in lines["LOADED"].split(",") if m], \
            run.stdout + run.stderr
        best = min(best, seconds)
        if best <= 0.3:
            break
    return best, loaded, text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_answers_without_torch(command, tmp_path):
    seconds, loaded, text = timed([command, "--help"], tmp_path)
    assert "Usage" in text and loaded == [], (loaded, text[-500:])
    assert seconds <= 0.3, f"{command} --help took {seconds:.2f} s"


@pytest.fixture
def mistakes(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    t, d = str(EXAMPLES / "task-format"), str(EXAMPLES / "domain")
    return tmp_path, {
        "unknown method": (["merge", "--task", t, "--domain", d, "--method", "tiess", "--out", "m"], "did you mean ties"),
        "bad parameter": (["merge", "--task", t, "--domain", d, "--method", "ties", "--density", "2", "--out", "m"],
                          "density"),
        "missing adapter": (["merge", "--task", "nowhere/", "--domain", d, "--out", "m"], "adapter folder not found"),
        "empty probe (merge)": (["merge", "--task", t, "--domain", d, "--domain-probe", "empty.txt",
                                 "--general-probe", "empty.txt", "--out", "m"], "no inputs"),
        "missing stats": (["merge", "--task", t, "--domain", d, "--domain-stats", "d.safetensors",
                           "--general-stats", "g.safetensors", "--out", "m"], "not found"),
        "output taken": (["merge", "--task", t, "--domain", d, "--method", "linear", "--out", "taken"], "--force"),
        "no domain": (["merge", "--task", t, "--out", "m"], "--domain"),
        "unknown flag": (["merge", "--dlta", "1"], "--delta"),
        "empty probe": (["probe", "--probe", "empty.txt", "--out", "s.safetensors"], "no inputs"),
        "missing probe": (["probe", "--probe", "missing.txt", "--out", "s.safetensors"], "not found"),
        "first and limit": (["eval", "--dataset", "x", "--first", "3", "--limit", "3"], "exclude each other"),
    }


def test_every_argument_error_answers_without_torch(mistakes):
    """One line, before torch is imported or a model loaded: `tada probe --probe empty.txt` loaded
    the model for 27 s before saying so, and every merge error took 3-4 s. Not even numpy: mapping
    an error's field names to flags loaded every command (numpy through `export-gguf`), which put
    "output taken" at 0.25-0.31 s CPU here; now only the command that ran is read."""
    cwd, cases = mistakes
    for name, (args, shown) in cases.items():
        seconds, loaded, text = timed(args, cwd, heavy=HEAVY + ("numpy",))
        assert shown in text and loaded == [], (name, loaded, text[-500:])
        assert seconds <= 0.3, f"{name}: {seconds:.2f} s"
    assert (cwd / "taken" / "notes.txt").read_text() == "mine" and not (cwd / "m").exists()


def test_a_merge_without_probes_imports_neither_transformers_nor_peft(tmp_path):
    out = tmp_path / "m"
    args = ["merge", "--task", str(EXAMPLES / "task-format"), "--domain", str(EXAMPLES / "domain"),
            "--method", "linear", "--out", str(out), "--quiet"]
    _, loaded, text = timed(args, tmp_path, tries=1)
    assert (out / "adapter_model.safetensors").is_file(), text[-1000:]
    assert loaded == ["torch"], loaded


def test_versions_read_the_package_metadata():
    code = ("import sys\nfrom tada.report import versions\nv = versions()\n"
            f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), v['peft'], v['transformers'])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    from importlib.metadata import version

    assert f"LOADED [] {version('peft')} {version('transformers')}" in run.stdout, run.stdout + run.stderr
