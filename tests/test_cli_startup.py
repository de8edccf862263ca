"""`tada --help` starts without torch: commands load lazily (tada.cli.app.COMMANDS)."""
from __future__ import annotations

import subprocess
import sys

import click

from tada.cli import cli
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
    n, cores = run.stdout.split()[1:]
    assert n == cores, run.stdout
