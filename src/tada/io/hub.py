"""The Hugging Face hub: what a hub id is, whether a repository is reachable, and publishing a
merged adapter folder (``tada push``, ``push_to_hub``).

``create_repo(exist_ok=True)`` then ``upload_folder``; with a revision other than ``main`` its
branch is created first. Any failure (offline, no token, no permission) is one line (TadaError);
the local folder is never changed.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .._util import first_line
from ..errors import TadaError

CONFIG_NAME = "adapter_config.json"
_HUB_ID = re.compile(r"^(?:[\w.-]{1,96}/)?[\w.-]{1,96}$")


def is_hub_id(value: Any) -> bool:
    """``name`` or ``owner/name`` as the hub spells repository ids (``huggingface_hub``'s
    ``validate_repo_id`` rules: word characters, ``-`` and ``.``; no ``--``/``..``; no leading or
    trailing ``-``/``.``)."""
    if not isinstance(value, str) or not _HUB_ID.match(value) or "--" in value or ".." in value:
        return False
    return all(part and part[0] not in "-." and part[-1] not in "-." for part in value.split("/"))


def resolvable_base(value: Any) -> bool:
    """Whether a loader can resolve ``base_model_name_or_path``: an existing local path, or a hub id
    that is not a relative path to something absent (``./x``, ``a/b/c`` are not ids)."""
    if not isinstance(value, str) or not value:
        return False
    return os.path.exists(value) or is_hub_id(value)


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


def hub_reachable(repo_id: str, repo_type: str = "model") -> bool:
    """Whether the hub answers for ``repo_id`` from here (10 s time-out; any failure is no)."""
    try:
        from huggingface_hub import HfApi

        HfApi().repo_info(repo_id, repo_type=repo_type, timeout=10)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable from here"
        return False
