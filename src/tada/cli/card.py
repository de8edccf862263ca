"""``tada card``: (re)write a merged adapter's README.md model card, optionally with an evaluation table."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from ..card import CARD_NAME, model_card
from ..errors import TadaError
from ..report import REPORT_NAME
from .app import cli


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise TadaError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TadaError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TadaError(f"{path}: expected a JSON object")
    return data


def read_eval_record(path: str | os.PathLike) -> dict:
    """A ``tada eval`` record (the ``.json`` beside the predictions; the ``.jsonl`` names it too)."""
    p = Path(path)
    if p.suffix == ".jsonl":
        p = p.with_suffix(".json")
    record = _read_json(p, "evaluation record")
    if "accuracy" not in record or not isinstance(record.get("key"), dict):
        raise TadaError(f"{p}: not a `tada eval` record (no key/accuracy)")
    return record


def write_card(folder: str | os.PathLike, eval_files: tuple[str, ...] | list[str] = ()) -> Path:
    """Rewrite ``folder``/README.md from its report and config (and ``eval_files``), atomically."""
    folder = Path(folder)
    report = _read_json(folder / REPORT_NAME, "merge report (is this a folder written by tada merge?)")
    config = _read_json(folder / "adapter_config.json", "adapter config")
    text = model_card(report, config, [read_eval_record(f) for f in eval_files])
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{CARD_NAME}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, folder / CARD_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / CARD_NAME


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@cli.command("card")
@click.argument("out")
@click.option("--eval", "evals", multiple=True,
              help="A `tada eval` record (.json beside its predictions) to list in the card (repeatable).")
def card_cmd(out, evals) -> None:
    """Rewrite the README.md model card of merged adapter OUT (with an evaluation table from --eval)."""
    click.echo(f"wrote {write_card(out, evals)}")
