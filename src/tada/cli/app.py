"""The ``tada`` command group and its error handling.

Every user mistake exits with code 2 and one line on stderr (``error: …``, library fields shown as
flags); an internal error exits with code 1 and a hint; ``--debug`` shows tracebacks. The commands
live one per module beside this one and only parse and print.
"""
from __future__ import annotations

import os
import sys
import warnings

import click

from .._util import free_cores
from ..errors import TadaError
from .options import as_flags, flag_map


def _warn_line(message, category, filename, lineno, file=None, line=None):
    ctx = click.get_current_context(silent=True)
    click.echo(f"warning: {as_flags(str(message), _flags(ctx.command.name if ctx else None))}", err=True)


def _flags(command_name: str | None) -> dict[str, str]:
    """Field name → flag for a message of the command that ran (every command's when it is not
    known): loading every command to map one error's fields imported the other commands' heavy
    modules (numpy through ``export-gguf``), and an argument error must answer in ≤ 0.3 s."""
    command = cli.get_command(click.Context(cli), command_name) if command_name in COMMANDS else None
    return flag_map(command or cli)


class OnceCommand(click.Command):
    """A command whose single-valued options may be given once: a repeated ``--domain A --domain B``
    would otherwise keep only the last value silently (click's default)."""

    def parse_args(self, ctx, args):
        _refuse_repeats(self, ctx, args)
        return super().parse_args(ctx, args)


def _refuse_repeats(command: click.Command, ctx, args: list[str]) -> None:
    _, _, order = command.make_parser(ctx).parse_args(args=list(args))
    seen: set[str] = set()
    for param in order:
        if not isinstance(param, click.Option) or param.multiple or param.count:
            continue
        if param.name in seen:
            raise click.UsageError(f"option {max(param.opts, key=len)} given more than once "
                                   "(it takes one value)", ctx)
        seen.add(param.name)


class OnceGroup(click.Group):
    command_class = OnceCommand
    group_class = type  # sub-groups are OnceGroup too


#: Every command: its module under tada.cli (imported only when the command runs, so that
#: ``tada --help`` starts without importing torch) and its one-line help for ``tada --help``
#: (tests/test_cli_startup.py checks that each equals the command's own).
COMMANDS: dict[str, tuple[str, str]] = {
    'analyze': ('analyze', "The paper's analyses: probe size (Table 5), probe mismatch (6), ablations..."),
    'bench': ('bench', 'Base, task only, domain only and every merge method on every dataset: the...'),
    'check': ('check', 'Print what TARGET would refuse in ADAPTER (exit 2 if anything); nothing loads...'),
    'card': ('card', 'Rewrite the README.md model card of merged adapter OUT (with an evaluation...'),
    'datasets': ('info', 'List the registered evaluation datasets (a .jsonl path works too; see...'),
    'demo': ('demo', 'The embedded default: merge the shipped example adapters on...'),
    'eval': ('evaluate', 'Multiple-choice accuracy (or --images: top-1) with n and a 95% Wilson...'),
    'export-gguf': ('export_gguf', 'Write LoRA adapter ADAPTER as GGUF file OUT for llama.cpp (--lora) and Ollama...'),
    'export-base': ('export', 'Write the base model as a transformers folder (config + safetensors +...'),
    'inspect': ('info', 'Rank, alpha, scaling, targets and per-module ‖ΔW‖ of an adapter.'),
    'merge': ('merge', "Merge TASK and DOMAIN adapters (see `tada methods` for every method's..."),
    'methods': ('info', 'List the merge methods and their parameters with defaults.'),
    'plot-alpha': ('plot', 'Fig. 2: per-layer task weight α of one or two TaDA merges.'),
    'probe': ('probe', 'Compute probe statistics once (e.g. on a GPU box) for later merges without...'),
    'push': ('push', 'Upload adapter folder OUT to hub model repository REPO (owner/name), creating...'),
    'train': ('train', 'Train a LoRA adapter (PEFT + transformers), seeded and deterministic on CPU;...'),
    'tune': ('tune', 'Tune every merge method with the same trial budget on validation data; write...'),
}


class LazyGroup(OnceGroup):
    """The top-level group: a command's module is imported when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            importlib.import_module(f"tada.cli.{COMMANDS[cmd_name][0]}")  # registers it on `cli`
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else (self.commands[name].get_short_help_str(80)))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--verbose", is_flag=True, help="Show the libraries' model-loading progress bars.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch [default: $OMP_NUM_THREADS, "
                                                           "else the cores this process may use that "
                                                           "other work leaves free].")
@click.version_option(package_name="tada")
def cli(debug: bool, verbose: bool, threads: int | None) -> None:
    """Merge a task LoRA adapter and a domain LoRA adapter into one PEFT LoRA adapter."""
    if verbose:
        os.environ["TADA_VERBOSE"] = "1"
    set_threads(threads)


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads once for the command: ``threads``, else ``$OMP_NUM_THREADS``, else
    the cores this process may run on that other work leaves free (:func:`tada._util.free_cores`;
    torch's own default counts every core of the machine, which oversubscribes a container or a
    busy box). Torch is not imported for this; it reads the variable when a command imports it."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else free_cores(len(os.sched_getaffinity(0)))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # already imported (in-process use): set it directly
        sys.modules["torch"].set_num_threads(threads)
    return threads


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (2 user error, 1 internal error)."""
    warnings.showwarning = _warn_line
    for category in (FutureWarning, DeprecationWarning):  # libraries' API notices, not the user's concern
        warnings.filterwarnings("ignore", category=category)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, standalone_mode=False)
    except TadaError as exc:
        if debug:
            raise
        args = argv if argv is not None else sys.argv[1:]
        click.echo(f"error: {as_flags(str(exc), _flags(next((a for a in args if a in COMMANDS), None)))}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}\n(rerun with --debug for the traceback "
                   "and please report it)", err=True)
        sys.exit(1)
