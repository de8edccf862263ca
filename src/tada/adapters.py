"""PEFT LoRA adapters in and out: read, validate, fold the scaling, write atomically.

One adapted module stores ``lora_A`` (r×d_in) and ``lora_B`` (d_out×r) and a scaling c
(``lora_alpha/r``, ``lora_alpha/√r`` with ``use_rslora``, or per-module ``rank_pattern`` /
``alpha_pattern`` values). Its delta is ΔW = c·B·A (SPEC §2). Tensors are read lazily from a
memory-mapped safetensors file, one module at a time, so a 70B-sized adapter never sits in
memory whole.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING
from pathlib import Path
from collections.abc import Iterator

from safetensors import safe_open

from ._lazy import torch  # imported on first use (start-up: `tada inspect` reads adapters without it)

from .io.atomic import folder_transaction
from .io.files import read_json_object
from .io.hub import resolvable_base
from .errors import TadaError
from .lowrank import LoraModule
from .models import EMBEDDED_HUB_ID, is_embedded

if TYPE_CHECKING:
    import numpy as np  # imported where used: a merge's argument errors answer without it (issue #26)


CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PICKLE_NAME = "adapter_model.bin"
#: The prompt an adapter was trained on (written by ``tada train``, carried by ``tada merge``, read
#: by ``tada eval`` and the model card): ``{"format": "raw" | "chat_template", "mode", "template",
#: "example", …}``; see :func:`read_prompt_format`.
PROMPT_NAME = "tada_prompt.json"
PROMPT_FORMATS = ("raw", "chat_template")
_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")

#: safetensors header dtype codes → torch's dtype names.
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


@dataclass
class Adapter:
    """A PEFT LoRA adapter on disk. Modules are read on demand (``module(name)``)."""

    path: Path
    config: dict
    module_names: list[str]
    tensor_keys: dict[str, tuple[str, str]]  # module → (key of A, key of B)
    extra_keys: list[str]  # modules_to_save / trainable tokens tensors, carried as they are
    weights_file: Path
    _pickle_state: dict | None = field(default=None, repr=False)
    _handle: object | None = field(default=None, repr=False)
    _np_handle: object | None = field(default=None, repr=False)  # the same file, read as numpy arrays
    source: str = ""  # what the user named: a folder or a hub id
    revision: str | None = None

    # ---- config-derived properties -------------------------------------------------------
    @property
    def base_model(self) -> str | None:
        return self.config.get("base_model_name_or_path")

    @property
    def dtype(self) -> torch.dtype:
        if not self.module_names:
            return torch.float32
        return self.module(self.module_names[0]).A.dtype

    def configured_rank(self, name: str) -> int:
        """r of one module after ``rank_pattern`` (PEFT's rule: pattern key matches the name's tail)."""
        pattern = self.config.get("rank_pattern") or {}
        key = _pattern_key(pattern, name)
        return int(pattern[key]) if key is not None else int(self.config.get("r", 8))

    def scaling(self, name: str) -> float:
        """c = alpha/r, or alpha/√r with ``use_rslora`` (SPEC §2)."""
        r = self.configured_rank(name)
        alphas = self.config.get("alpha_pattern") or {}
        key = _pattern_key(alphas, name)
        alpha = float(alphas[key]) if key is not None else float(self.config.get("lora_alpha", 8))
        return alpha / math.sqrt(r) if self.config.get("use_rslora") else alpha / r

    # ---- tensors ----------------------------------------------------------------------------
    def _tensor(self, key: str) -> torch.Tensor:
        if self._pickle_state is not None:
            return self._pickle_state[key]
        try:
            if self._handle is None:  # opened once, memory-mapped; tensors are read on demand
                self._handle = safe_open(str(self.weights_file), framework="pt")
            return self._handle.get_tensor(key)  # type: ignore[attr-defined]
        except Exception as exc:  # corrupt file body
            raise TadaError(f"{self.weights_file}: cannot read tensor {key!r}: {exc}") from None

    def _check_factors(self, name: str, A, B, finite: Callable[[Any], bool]) -> None:
        if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[1]:
            raise TadaError(f"{self.path}: module {name}: lora_A {tuple(A.shape)} and lora_B "
                            f"{tuple(B.shape)} are not an r×d_in / d_out×r pair")
        if A.shape[0] != self.configured_rank(name):
            raise TadaError(f"{self.path}: module {name} has rank {A.shape[0]} but the config "
                            f"says r={self.configured_rank(name)}")
        for t, ab in ((A, "A"), (B, "B")):
            if not finite(t):
                raise TadaError(f"{self.path}: module {name}: lora_{ab} contains NaN or Inf")

    def module(self, name: str) -> LoraModule:
        """Read one module's factors (memory-mapped) and check them."""
        ka, kb = self.tensor_keys[name]
        A, B = self._tensor(ka), self._tensor(kb)
        self._check_factors(name, A, B, lambda t: bool(torch.isfinite(t).all()))
        return LoraModule(name, A, B, self.scaling(name))

    def factor_arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """One module's A and B as float64 numpy arrays, checked as :meth:`module` checks them,
        read without importing torch (``tada inspect``'s start-up) unless the file holds bfloat16,
        which numpy has no type for, or is a pickle."""
        import numpy as np

        if self._pickle_state is not None or self.stored_dtype == "bfloat16":
            m = self.module(name)
            return m.A.double().numpy(), m.B.double().numpy()
        try:
            A, B = (self._numpy_file().get_tensor(k).astype(np.float64) for k in self.tensor_keys[name])
        except Exception as exc:  # corrupt file body
            raise TadaError(f"{self.weights_file}: cannot read module {name!r}: {exc}") from None
        self._check_factors(name, A, B, lambda t: bool(np.isfinite(t).all()))
        return A, B

    def _numpy_file(self) -> Any:
        """The weights file opened once for numpy reads (memory-mapped)."""
        if self._np_handle is None:
            self._np_handle = safe_open(str(self.weights_file), framework="numpy")
        return self._np_handle

    def factor_shape(self, name: str) -> tuple[int, int, int]:
        """(d_out, d_in, r) of one module as stored, from the file's header (no tensor is read;
        a pickled adapter's tensors are in memory already). Unchecked: :meth:`module` checks."""
        ka, kb = self.tensor_keys[name]
        if self._pickle_state is not None:
            a, b = tuple(self._pickle_state[ka].shape), tuple(self._pickle_state[kb].shape)
        else:
            a, b = self._numpy_file().get_slice(ka).get_shape(), self._numpy_file().get_slice(kb).get_shape()
        return int(b[0]), int(a[-1]), int(a[0])

    @functools.cached_property
    def stored_dtype(self) -> str:
        """The dtype of the LoRA factors as stored (``float32``, ``bfloat16``…), from the file's header."""
        if not self.module_names:
            return "float32"
        if self._pickle_state is not None:
            return str(self.module(self.module_names[0]).A.dtype).removeprefix("torch.")
        code = self._numpy_file().get_slice(self.tensor_keys[self.module_names[0]][0]).get_dtype()
        return SAFETENSORS_DTYPES.get(code, code.lower())

    def modules(self) -> Iterator[LoraModule]:
        for name in self.module_names:
            yield self.module(name)

    def extra_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors that are not LoRA factors (``modules_to_save`` heads, …), keys as stored."""
        return {k: self._tensor(k) for k in self.extra_keys}


def _pattern_key(pattern: dict, name: str) -> str | None:
    """The ``rank_pattern``/``alpha_pattern`` key that applies to module ``name``.

    Same rule as PEFT's ``get_pattern_key``: the key (a regex) must match a dotted tail of the name.
    """
    for key in pattern:
        if key == name or re.match(rf"(.*\.)?({key})$", name):
            return key
    return None


def natural_key(name: str) -> list:
    """Sort ``layers.2`` before ``layers.10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


# ---- reading ---------------------------------------------------------------------------------

def resolve_adapter_path(source: str | os.PathLike, revision: str | None = None) -> Path:
    """A local folder as it is, or a hub id downloaded (cached) with ``huggingface_hub``."""
    p = Path(source)
    if p.is_dir():
        return p
    if p.exists():
        raise TadaError(f"adapter must be a folder with {CONFIG_NAME}, not a file: {source}")
    s = str(source)
    if s.count("/") != 1 or s.startswith((".", "/")):
        raise TadaError(f"adapter folder not found: {source}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(s, revision=revision,
                                      allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, PICKLE_NAME, PROMPT_NAME]))
    except Exception as exc:
        raise TadaError(f"adapter {source!r} is neither a local folder nor reachable on the hub "
                        f"({type(exc).__name__})") from None


def read_prompt_format(folder: str | os.PathLike) -> dict | None:
    """The prompt format an adapter folder records in ``tada_prompt.json``, or None without one.

    ``format``: ``raw`` (the data's text as it is: ``template`` says how, e.g. ``{prompt}{answer}``,
    the answer appended with nothing between) or ``chat_template`` (``template``: the tokenizer's
    chat template; the prompt is the user turn, rendered with the generation prompt, and the answer
    the assistant turn); ``example``: one training prompt exactly as the model saw it. A malformed
    file is a one-line error."""
    path = Path(folder) / PROMPT_NAME
    if not path.is_file():
        return None
    record = read_json_object(path, PROMPT_NAME)
    if record.get("format") not in PROMPT_FORMATS or not isinstance(record.get("template"), str):
        raise TadaError(f"{path}: `format` must be one of {', '.join(PROMPT_FORMATS)} and `template` a string")
    return record


def _read_config(folder: Path) -> dict:
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise TadaError(f"{folder}: no {CONFIG_NAME} (is this a PEFT adapter folder?)")
    return read_json_object(cfg_path, CONFIG_NAME)


def check_config(config: dict, where: str | Path) -> None:
    """Refuse what we cannot merge exactly, with the reason (SPEC §6, issue: adapter I/O)."""
    ptype = str(config.get("peft_type", "LORA")).upper()
    if ptype != "LORA":
        raise TadaError(f"{where}: peft_type {ptype} is not supported (only LoRA adapters can be merged)")
    if config.get("use_dora"):
        raise TadaError(f"{where}: DoRA adapters are not supported (their magnitude vector makes "
                        "the delta non-linear in B·A)")
    if config.get("lora_bias"):
        raise TadaError(f"{where}: lora_bias adapters are not supported (the bias term is not a "
                        "low-rank delta)")
    if config.get("target_parameters"):
        raise TadaError(f"{where}: target_parameters (LoRA on raw parameters) is not supported")
    for key in ("r", "lora_alpha"):
        if key in config and not isinstance(config[key], (int, float)):
            raise TadaError(f"{where}: {key} must be a number")


def _targeted(spec, name: str) -> bool:
    """PEFT's rule: a string is a regex that must match the whole module name; a list names
    modules exactly or by a dotted tail (``q_proj`` matches ``model.layers.0.self_attn.q_proj``)."""
    if isinstance(spec, str):
        return re.fullmatch(spec, name) is not None
    return any(name == t or name.endswith("." + t) for t in spec)


def check_targets(config: dict, modules: list[str], where: str | Path) -> None:
    """Refuse weights of modules that ``target_modules`` (minus ``exclude_modules``) does not
    cover: PEFT builds LoRA layers from the config, so it would not put those weights where they
    were trained. ``all-linear`` and a missing value (PEFT's per-model default) are accepted."""
    targets, excluded = config.get("target_modules"), config.get("exclude_modules")
    if isinstance(targets, str) and targets.lower() == "all-linear":
        targets = None
    if not isinstance(targets, (str, list, tuple)):
        targets = None
    try:
        outside = [m for m in modules if (targets is not None and not _targeted(targets, m))
                   or (isinstance(excluded, (str, list, tuple)) and _targeted(excluded, m))]
    except re.error as exc:
        raise TadaError(f"{where}: target_modules/exclude_modules is not a valid regex ({exc})") from None
    if outside:
        more = f" and {len(outside) - 1} more" if len(outside) > 1 else ""
        raise TadaError(f"{where}: {CONFIG_NAME} target_modules {targets!r}"
                        f"{f' (exclude_modules {excluded!r})' if excluded else ''} does not cover module "
                        f"{outside[0]}{more} present in the weights; PEFT would not load them where they "
                        "were trained (fix target_modules)")


def _within(folder: Path, file: Path) -> None:
    """Refuse symlinks pointing outside the adapter folder."""
    real, root = file.resolve(), folder.resolve()
    if root not in real.parents and real != root:
        raise TadaError(f"{file}: points outside the adapter folder ({real})")


def load_adapter(source: str | os.PathLike, *, revision: str | None = None,
                 allow_pickle: bool = False) -> Adapter:
    """Open a PEFT LoRA folder (or hub id): config checked, tensor names parsed, nothing loaded yet."""
    folder = resolve_adapter_path(source, revision)
    config = _read_config(folder)
    check_config(config, folder)
    weights = folder / WEIGHTS_NAME
    pickle_state = None
    if weights.exists():
        _within(folder, weights)
        try:
            with safe_open(str(weights), framework="numpy") as f:
                keys = list(f.keys())
        except Exception as exc:
            raise TadaError(f"{weights}: not a readable safetensors file ({_short(exc)})") from None
    elif (folder / PICKLE_NAME).exists():
        if not allow_pickle:
            raise TadaError(f"{folder}: only a pickle {PICKLE_NAME} is present; pickles can run code "
                            "when loaded. Convert it to safetensors, or pass `allow_pickle` if you trust it")
        _within(folder, folder / PICKLE_NAME)
        try:
            pickle_state = torch.load(folder / PICKLE_NAME, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise TadaError(f"{folder / PICKLE_NAME}: cannot be read safely ({_short(exc)})") from None
        keys = list(pickle_state)
    else:
        raise TadaError(f"{folder}: no {WEIGHTS_NAME}")

    pairs: dict[str, dict[str, str]] = {}
    extra: list[str] = []
    for key in keys:
        m = _LORA_KEY.match(key)
        if m is None:
            if "lora_" in key or "magnitude_vector" in key:
                raise TadaError(f"{weights}: tensor name {key!r} is not a LoRA A/B weight this tool understands")
            extra.append(key)
            continue
        pairs.setdefault(m["module"], {})[m["ab"]] = key
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            missing = ({"A", "B"} - set(ab)).pop()
            raise TadaError(f"{weights}: module {module} has no lora_{missing} tensor")
    if not pairs:
        raise TadaError(f"{weights}: no LoRA tensors found")
    names = sorted(pairs, key=natural_key)
    check_targets(config, names, folder)
    return Adapter(folder, config, names, {n: (pairs[n]["A"], pairs[n]["B"]) for n in names},
                   sorted(extra), weights, pickle_state, source=str(source), revision=revision)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# ---- writing ---------------------------------------------------------------------------------

def lora_keys(module: str) -> tuple[str, str]:
    """PEFT's on-disk names (no adapter name) for one module's A and B."""
    return f"{_PREFIX}{module}.lora_A.weight", f"{_PREFIX}{module}.lora_B.weight"


def output_config(task: Adapter, domain: Adapter | list[Adapter], ranks: dict[str, int], *,
                  base_model: str | None = None) -> dict:
    """The merged adapter's ``adapter_config.json`` (SPEC §6, §8).

    ``r`` = the most common module rank, ``rank_pattern`` for the others, ``lora_alpha`` = r and
    ``alpha_pattern`` = rank_pattern, so the scaling is exactly 1 everywhere; no rsLoRA, DoRA or
    bias. ``target_modules``: the inputs' own value when all adapters declare the same one and
    hold the same modules (it described exactly these modules), otherwise the exact names of the
    modules written, so PEFT adapts nothing else.
    """
    counts: dict[int, int] = {}
    for r in ranks.values():
        counts[r] = counts.get(r, 0) + 1
    r_main = max(sorted(counts), key=lambda r: counts[r]) if counts else 8
    rank_pattern = {m: r for m, r in ranks.items() if r != r_main}
    domains = domain if isinstance(domain, list) else [domain]
    t = task.config
    same = all(set(task.module_names) == set(d.module_names) == set(ranks)
               and all(_canonical(t.get(k)) == _canonical(d.config.get(k))
                       for k in ("target_modules", "layers_to_transform", "layers_pattern")) for d in domains)
    target = _canonical(t.get("target_modules")) if same else sorted(ranks, key=natural_key)
    config = {
        "peft_type": "LORA",
        "task_type": t.get("task_type"),
        "base_model_name_or_path": base_model or t.get("base_model_name_or_path"),
        "r": r_main,
        "lora_alpha": r_main,
        "rank_pattern": rank_pattern,
        "alpha_pattern": dict(rank_pattern),
        "target_modules": target,
        "lora_dropout": 0.0,
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "fan_in_fan_out": bool(t.get("fan_in_fan_out", False)),
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": t.get("modules_to_save"),
        "layers_to_transform": t.get("layers_to_transform") if same else None,
        "layers_pattern": t.get("layers_pattern") if same else None,
    }
    return config


def output_base_model(inherited: str | None, base: str | None) -> tuple[str | None, str | None]:
    """The merged adapter's ``base_model_name_or_path`` and a warning, if any.

    The task adapter's value is kept when a loader can resolve it (a hub id, an existing local
    path); otherwise the ``base`` the user gave (an existing local path made absolute) replaces it;
    without one it is kept, with a warning.
    """

    if is_embedded(base) or (not base and is_embedded(inherited)):
        # the embedded GGUF is a quantisation of this hub model: the id every loader resolves
        # (`tada export-base` writes the GGUF's own weights as a folder, for exact numbers)
        return EMBEDDED_HUB_ID, None
    if resolvable_base(inherited):
        return inherited, None
    if base:
        return (os.path.abspath(base) if os.path.exists(base) else base), None
    return inherited, (f"the task adapter's base_model_name_or_path {inherited!r} is neither a hub id nor an "
                       "existing path; written as it is (pass `base` to write a loadable one)")


def _canonical(value):
    """A config list compared as a set (PEFT saves ``target_modules`` from a set, in any order)."""
    return sorted(value) if isinstance(value, list) else value


def _json_bytes(obj: dict) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def check_output(out: str | os.PathLike, force: bool) -> None:
    """Refuse an output that exists unless ``force``, and with ``force`` anything but a PEFT
    adapter folder (a file, a symbolic link, a folder without ``adapter_config.json``): one line
    naming what is there, which is left untouched."""
    out = Path(out)
    if not os.path.lexists(out):
        return
    if not force:
        raise TadaError(f"output folder {out} exists; pass `force` to replace it")
    if out.is_symlink():
        what = "a symbolic link"
    elif not out.is_dir():
        what = "a file"
    elif not (out / CONFIG_NAME).is_file():
        entries = sorted(p.name for p in out.iterdir())
        what = (f"a folder without {CONFIG_NAME} ({len(entries)} entries"
                f"{f', e.g. {entries[0]}' if entries else ''})")
    else:
        return
    raise TadaError(f"`force` replaces only a PEFT adapter folder, but {out} is {what}; "
                    "left untouched (remove it yourself or choose another `out`)")


def write_adapter(out: str | os.PathLike, tensors: Mapping[str, torch.Tensor], config: dict,
                  extra_files: Mapping[str, dict | str] | None = None, *, force: bool = False) -> Path:
    """Write a PEFT folder atomically: a temporary sibling folder, then one rename.

    An existing ``out`` is never touched without ``force``, and ``force`` replaces only a PEFT
    adapter folder (:func:`check_output`); the old folder is swapped for the new one in a single
    atomic exchange (Linux ``renameat2``; elsewhere two renames), so a process killed at any
    moment leaves either the previous complete folder or the new complete one. Writers of the
    same ``out`` are serialised by a lock file beside it, removed when the writer is done;
    temporary folders (and a lock file) left by killed writers are removed by the next writer.
    On any error the temporary folder is removed. Folder and file modes follow the umask (0755 /
    0644 with the usual 022). ``extra_files``: dicts are written as JSON, strings as UTF-8 text.
    Same tensors and dicts ⇒ byte-identical files.
    """
    with folder_transaction(out, check=lambda: check_output(out, force)) as tmp:
        if hasattr(tensors, "save"):  # a TensorSpool: streamed from disk, same bytes as save_file
            tensors.save(tmp / WEIGHTS_NAME, metadata={"format": "pt"})
        else:
            from safetensors.torch import save_file  # imports torch: deferred for start-up time

            ordered = {k: tensors[k].contiguous() for k in sorted(tensors)}
            save_file(ordered, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        files = {CONFIG_NAME: config, **(extra_files or {})}
        for name, obj in files.items():
            (tmp / name).write_bytes(obj.encode() if isinstance(obj, str) else _json_bytes(obj))
    return Path(out)
