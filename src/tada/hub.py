"""Publishing a merged adapter folder to the Hugging Face hub (``tada push``, ``push_to_hub``).

``create_repo(exist_ok=True)`` then ``upload_folder``; with a revision other than ``main`` its
branch is created first. Any failure (offline, no token, no permission) is one line (TadaError);
the local folder is never changed.
"""
from __future__ import annotations

import os
from pathlib import Path

from ._util import first_line
from .card import is_hub_id
from .errors import TadaError

CONFIG_NAME = "adapter_config.json"


def push(folder: str | os.PathLike, repo: str, *, private: bool = False, revision: str | None = None) -> str:
    """Upload the adapter ``folder`` to hub model repository ``repo`` (created if absent, ``private``
    when created); ``revision``: the branch to commit to (created from main when absent).
    Returns the commit's URL."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise TadaError(f"{folder}: not an adapter folder (no {CONFIG_NAME}); nothing pushed")
    if not is_hub_id(repo) or "/" not in repo:
        raise TadaError(f"`push_to_hub` {repo!r} is not a hub repository id (owner/name)")
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise TadaError(f"cannot push to {repo}: the hub is offline (HF_HUB_OFFLINE is set); "
                        f"the adapter stays in {folder}")
    api = HfApi()
    step = "create the repository"
    try:
        api.create_repo(repo, private=private, repo_type="model", exist_ok=True)
        if revision and revision != "main":
            step = f"create branch {revision}"
            api.create_branch(repo, branch=revision, repo_type="model", exist_ok=True)
        step = "upload the folder"
        info = api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="model", revision=revision,
                                 commit_message=f"tada: upload merged adapter {folder.name}",
                                 ignore_patterns=[".*", "**/.*"])
    except Exception as exc:  # noqa: BLE001 - network, auth, permission: one line for the user
        raise TadaError(f"cannot push to {repo} ({step} failed: {first_line(exc, with_type=True)}); "
                        f"the adapter stays in {folder}") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}")
