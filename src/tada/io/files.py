"""Reading JSON, JSONL and YAML files, with one-line errors that name the file (and line)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from ..errors import TadaError


def parse_json_object(line: str, where: str) -> dict:
    """One JSONL line as a dict; ``where`` (``file:line``) prefixes the error."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TadaError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise TadaError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """A JSON file holding one object; ``what`` names it in the error when it is missing
    (``"evaluation record not found: …"``); malformed JSON or another type is a one-line error."""
    p = Path(path)
    if not p.is_file():
        raise TadaError(f"{what} not found: {path}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TadaError(f"{p}: malformed JSON ({getattr(exc, 'msg', None) or exc})") from None
    if not isinstance(obj, dict):
        raise TadaError(f"{p}: expected a JSON object, got {type(obj).__name__}")
    return obj


def load_yaml_mapping(path: str | os.PathLike, what: str, path_keys: tuple[str, ...] = (),
                      output_keys: tuple[str, ...] = ()) -> dict:
    """A YAML file holding a mapping. Values of ``path_keys`` that name an existing file or folder
    relative to the YAML file's folder are made relative to it (so configs travel with their data);
    relative values of ``output_keys`` (paths to be created) always are."""
    p = Path(path)
    if not p.is_file():
        raise TadaError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TadaError(f"{path}: malformed YAML{f' (line {mark.line + 1})' if mark else ''}") from None
    if not isinstance(data, dict):
        raise TadaError(f"{path}: expected a mapping of options")
    for key in path_keys:
        val = data.get(key)
        if isinstance(val, str) and val and not os.path.isabs(val) and (
                key in output_keys or (p.parent / val).exists()):
            data[key] = str(p.parent / val)
    return data


def read_probe_items(path: str | os.PathLike) -> tuple[list[str], bytes]:
    """A probe file's inputs and its bytes: a ``.txt`` file (one input per non-empty line) or a
    ``.jsonl`` file (a ``text`` field per line); one-line errors for a missing, non-UTF-8 or empty
    file. No torch: ``tada probe`` and ``tada merge`` check their probe files before loading anything."""
    p = Path(path)
    if not p.is_file():
        raise TadaError(f"probe file not found: {path}")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TadaError(f"{path}: probe file is not UTF-8 text") from None
    items: list[str] = []
    if p.suffix == ".jsonl":
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            obj = parse_json_object(line, f"{path}:{i}")
            if not isinstance(obj.get("text"), str):
                raise TadaError(f"{path}:{i}: expected an object with a string field \"text\"")
            if obj["text"].strip():
                items.append(obj["text"])
    else:
        items = [line for line in text.splitlines() if line.strip()]
    if not items:
        raise TadaError(f"{path}: probe file has no inputs")
    return items, raw
