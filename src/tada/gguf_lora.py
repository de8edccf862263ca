"""A PEFT LoRA adapter as a GGUF LoRA file for llama.cpp, Ollama and LM Studio.

The layout is the one llama.cpp reads (``src/llama-adapter.cpp``) and its own converter writes
(``convert_lora_to_gguf.py`` with ``conversion/llama.py``, ggml-org/llama.cpp@0c1e57098, the
version vendored by llama-cpp-python 0.3.36; this module shares no code with them):

- metadata ``general.architecture`` = the base's (``llama``; llama.cpp refuses a mismatch),
  ``general.type`` = ``adapter``, ``adapter.type`` = ``lora``, ``adapter.lora.alpha`` (float32);
- two tensors per adapted module, named after the base tensor plus ``.lora_a`` / ``.lora_b``
  (``blk.N.attn_q.weight.lora_a``: llama.cpp strips the suffix and looks the rest up among the
  base's tensors): PEFT's ``lora_A`` (r×d_in) and ``lora_B`` (d_out×r) as they are
  (numpy shapes; GGUF's ``ne`` reverses them: ``lora_a`` is (d_in, r) and ``lora_b`` (r, d_out),
  which is what llama.cpp checks against the base tensor's (d_in, d_out));
- llama.cpp applies ΔW·x = s·B·(A·x) with **one** alpha per file and the rank of each tensor:
  s = alpha / ``lora_b.ne[0]`` (``llama_adapter_lora_weight::get_scale``). The official converter
  writes ``lora_alpha`` and ignores ``use_rslora``, ``rank_pattern`` and ``alpha_pattern``; here
  each module's own PEFT scaling c (alpha/r, alpha/√r, patterns) is folded into ``lora_b``:
  B' = (c·r_m/alpha)·B, so that alpha/r_m·B'·A = c·B·A exactly (B is unchanged for plain LoRA);
- LLaMA's q/k rows: llama.cpp's HF→GGUF converter permutes the rows of ``q_proj``/``k_proj``
  per head (HF's half-split rotary layout → GGUF's interleaved pairs:
  ``reshape(n_head, 2, d_head/2, …).swapaxes(1, 2)``, with n_head_kv for k), and its LoRA
  converter applies the same row permutation to ``lora_B`` (rows of ΔW = rows of B) and leaves
  ``lora_A`` alone. Without it the q/k deltas would land on the wrong rotary dimensions.

Written in float32 by default (the converter's default is f16) and atomically (a temporary file
beside the output, renamed).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .adapters import Adapter, load_adapter
from .errors import TadaError
from .io.atomic import atomic_file
from .models import EMBEDDED_HUB_ID, is_embedded, smollm2_gguf

#: The LoRA-able linear layers of a LLaMA block (gguf's ``MODEL_TENSOR`` names).
_EXPORTED = ("ATTN_Q", "ATTN_K", "ATTN_V", "ATTN_OUT", "FFN_GATE", "FFN_UP", "FFN_DOWN")
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
#: transformers ``model_type`` values whose llama.cpp architecture is ``llama``.
_LLAMA_TYPES = ("llama", "mistral")
DTYPES = ("f32", "f16")


@dataclass(frozen=True)
class BaseInfo:
    """What the export needs from the base model: its llama.cpp architecture, its head counts
    (for the q/k permutation) and, for a GGUF base, each tensor's shape (GGUF ``ne``) to check
    the adapter against."""

    arch: str
    n_head: int
    n_head_kv: int
    source: str
    shapes: dict[str, tuple[int, ...]] | None = None


def gguf_tensor_name(module: str) -> str:
    """``model.layers.3.self_attn.q_proj`` → ``blk.3.attn_q``, through gguf's own LLaMA tensor map
    (``TensorNameMap``); anything but the attention q/k/v/o and MLP gate/up/down projections is
    refused in one line (llama.cpp's converter refuses embeddings and lm_head too)."""
    import gguf

    layer = _LAYER.search(module)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(layer[1]) + 1 if layer else 1)
    found = names.get_type_and_name(module)
    if found is None or found[0].name not in _EXPORTED:
        raise TadaError(f"module {module} has no llama.cpp LoRA tensor (only the attention q/k/v/o and "
                        "MLP gate/up/down projections of a LLaMA-family model can be exported to GGUF)")
    return found[1]


def permute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order: within each head, HF's halves [x₀…x_{d/2-1}, y₀…] become pairs
    [x₀, y₀, x₁, y₁, …] (convert_hf_to_gguf's ``LlamaModel.permute``)."""
    d_out = rows.shape[0]
    if d_out % (2 * n_head):
        raise TadaError(f"{d_out} rows cannot be split into {n_head} rotary heads")
    return (rows.reshape(n_head, 2, d_out // n_head // 2, *rows.shape[1:])
            .swapaxes(1, 2).reshape(rows.shape))


def read_base(base: str | os.PathLike | None, adapter: Adapter) -> BaseInfo:
    """The base as a GGUF file (read with ``gguf.GGUFReader``: architecture, head counts, tensor
    shapes) or a transformers folder (``config.json``); ``None``: the embedded SmolLM2 when the
    adapter names it, its hub id (merges record that) or nothing, else the adapter's recorded base
    if it is a local file/folder."""
    if base is None or str(base) in ("smollm2", "embedded"):
        recorded = adapter.base_model
        if base is not None or not recorded or is_embedded(recorded) or recorded == EMBEDDED_HUB_ID:
            spec = smollm2_gguf()
            base = Path(spec.path) / str(spec.gguf_file)
        elif Path(recorded).exists():
            base = recorded
        else:
            raise TadaError(f"`base` is needed: the adapter names {recorded!r}; give that model's .gguf "
                            "file (or its transformers folder) for its head counts")
    path = Path(base)
    if path.is_file() and path.suffix == ".gguf":
        return _read_gguf_base(path)
    if path.is_dir() and (path / "config.json").is_file():
        return _read_config_base(path / "config.json")
    if path.is_dir() and len(ggufs := sorted(path.glob("*.gguf"))) == 1:
        return _read_gguf_base(ggufs[0])
    raise TadaError(f"base {base}: not a .gguf file nor a folder with config.json")


def gguf_base_of(base: str | os.PathLike | None) -> str | None:
    """The merge's ``base`` as a GGUF export's: a local file or folder, or ``smollm2``; ``None`` (the
    adapter's recorded base) for a hub id, whose head counts are not on this machine."""
    if base is None:
        return None
    return str(base) if Path(base).exists() or str(base) in ("smollm2", "embedded") else None


def _read_gguf_base(path: Path) -> BaseInfo:
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: one line
        raise TadaError(f"{path}: not a readable GGUF file ({exc})") from None

    def field(key: str):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = field("general.architecture")
    if field("general.type") == "adapter":
        raise TadaError(f"{path} is itself an adapter; give the base model's .gguf file")
    n_head, n_kv = field(f"{arch}.attention.head_count"), field(f"{arch}.attention.head_count_kv")
    if not isinstance(arch, str) or not isinstance(n_head, int):
        raise TadaError(f"{path}: no general.architecture / {arch}.attention.head_count")
    shapes = {t.name.removesuffix(".weight"): tuple(int(x) for x in t.shape) for t in reader.tensors}
    return BaseInfo(arch, n_head, n_kv if isinstance(n_kv, int) else n_head, str(path), shapes)


def _read_config_base(path: Path) -> BaseInfo:
    config = json.loads(path.read_text())
    model_type = config.get("model_type")
    if model_type not in _LLAMA_TYPES:
        raise TadaError(f"{path}: model_type {model_type!r} is not exported to GGUF (LLaMA-family "
                        f"models only: {', '.join(_LLAMA_TYPES)})")
    n_head = int(config["num_attention_heads"])
    return BaseInfo("llama", n_head, int(config.get("num_key_value_heads") or n_head), str(path))


def gguf_tensors(adapter: Adapter, base: BaseInfo, *, dtype: str = "f32"
                 ) -> tuple[float, dict[str, np.ndarray]]:
    """(alpha, {GGUF tensor name: array}) for ``adapter`` on ``base`` — the file's contents."""
    if dtype not in DTYPES:
        raise TadaError(f"unknown GGUF dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if base.arch != "llama":
        raise TadaError(f"base architecture {base.arch!r} is not exported to GGUF (llama only)")
    config = adapter.config
    if adapter.extra_keys or config.get("modules_to_save") or config.get("trainable_token_indices"):
        raise TadaError(f"{adapter.path}: modules_to_save / trainable tokens cannot be exported to a "
                        "GGUF LoRA (llama.cpp loads only lora_a/lora_b pairs)")
    if config.get("fan_in_fan_out"):
        raise TadaError(f"{adapter.path}: fan_in_fan_out adapters (GPT-2 Conv1D) are not exported to GGUF")
    if str(config.get("bias", "none")) != "none":
        raise TadaError(f"{adapter.path}: bias={config.get('bias')!r} adapters carry biases a GGUF LoRA cannot hold")
    alpha = float(config.get("lora_alpha", 8))
    if not alpha > 0:  # llama.cpp reads alpha 0 as "no scaling"; any positive value is exact after the fold
        alpha = float(config.get("r", 8))
    out_type = np.float32 if dtype == "f32" else np.float16
    tensors: dict[str, np.ndarray] = {}
    for name in adapter.module_names:
        gname = gguf_tensor_name(name)
        A, B = adapter.factor_arrays(name)  # float64: r×d_in, d_out×r
        rank = A.shape[0]
        B = B * (adapter.scaling(name) * rank / alpha)  # llama.cpp: alpha/rank · B'A = c · BA
        if gname.endswith(".attn_q"):
            B = permute_rows(B, base.n_head)
        elif gname.endswith(".attn_k"):
            B = permute_rows(B, base.n_head_kv)
        if base.shapes is not None:
            want = base.shapes.get(gname)
            if want is None:
                raise TadaError(f"module {name}: the base {base.source} has no tensor {gname}.weight "
                                "(wrong base model?)")
            if want != (A.shape[1], B.shape[0]):
                raise TadaError(f"module {name}: ΔW is {B.shape[0]}×{A.shape[1]} but the base's {gname} "
                                f"is {want[1]}×{want[0]} (wrong base model?)")
        tensors[f"{gname}.weight.lora_a"] = np.ascontiguousarray(A, dtype=out_type)
        tensors[f"{gname}.weight.lora_b"] = np.ascontiguousarray(B, dtype=out_type)
    return alpha, tensors


def export_gguf_lora(adapter_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                     base: str | os.PathLike | None = None, dtype: str = "f32") -> Path:
    """Write PEFT LoRA ``adapter_dir`` as the GGUF LoRA ``out_path`` for llama.cpp
    (``--lora``) / Ollama (``ADAPTER``). ``base``: the base model's ``.gguf`` file or transformers
    folder (default: the embedded SmolLM2 when the adapter names it). Written atomically."""
    import gguf

    out = Path(out_path)
    if out.suffix != ".gguf":
        raise TadaError(f"{out}: the output file name must end in .gguf")
    if out.is_dir():
        raise TadaError(f"{out} is a folder")
    adapter = load_adapter(adapter_dir)
    info = read_base(base, adapter)
    alpha, tensors = gguf_tensors(adapter, info, dtype=dtype)
    with atomic_file(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), info.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(Path(adapter_dir).resolve().name)
        if tokens := adapter.config.get("alora_invocation_tokens"):
            writer.add_key_value(gguf.Keys.Adapter.ALORA_INVOCATION_TOKENS, [int(t) for t in tokens],
                                 gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32)
        for name, array in tensors.items():
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out
