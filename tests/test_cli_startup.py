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
