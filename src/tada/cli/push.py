"""``tada push``: upload a merged adapter folder to the Hugging Face hub."""
from __future__ import annotations

import click

from ..io.hub import push
from .app import cli


@cli.command("push")
@click.argument("out")
@click.argument("repo")
@click.option("--private", is_flag=True, help="Create the repository private (when it does not exist yet).")
@click.option("--revision", help="Branch to commit to (created when absent; default main).")
def push_cmd(out, repo, private, revision) -> None:
    """Upload adapter folder OUT to hub model repository REPO (owner/name), creating it if needed."""
    click.echo(f"pushed {out} to {push(out, repo, private=private, revision=revision)}")
