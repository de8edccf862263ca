"""What a serving stack or loader would refuse in an adapter folder (``tada check``).

The rules are the documented limits of each target, checked on ``adapter_config.json`` and the
weights' shapes only (no model is loaded):

- ``vllm`` (its LoRA loader): every module's rank ≤ ``--max-lora-rank`` (vLLM's default 16);
  one rank for the whole adapter (``rank_pattern``/``alpha_pattern`` are not read, so their
  modules would be scaled wrongly); no DoRA; no LoRA bias; no ``modules_to_save`` (heads and
  embeddings trained with the adapter are not served).
- ``peft``: ``peft_type`` LORA, every weight a known module (``target_modules`` covers it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import TadaError

TARGETS = ("vllm", "peft")
VLLM_DEFAULT_MAX_LORA_RANK = 16


def refusals(folder: str | os.PathLike, target: str, *, max_lora_rank: int = VLLM_DEFAULT_MAX_LORA_RANK) -> list[str]:
    """One line per thing ``target`` would refuse (empty: it loads the adapter as it is)."""
    from ..adapters import load_adapter  # deferred: adapters imports torch; `tada check` --help needs none

    if target not in TARGETS:
        raise TadaError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    path = Path(folder)
    adapter = load_adapter(path)
    config = json.loads((Path(adapter.path) / "adapter_config.json").read_text(encoding="utf-8"))
    out = []
    if config.get("peft_type", "LORA") != "LORA":
        out.append(f"peft_type is {config.get('peft_type')!r}, not LORA")
    if target == "vllm":
        ranks = {name: adapter.configured_rank(name) for name in adapter.module_names}
        above = {n: r for n, r in ranks.items() if r > max_lora_rank}
        if above:
            name, r = max(above.items(), key=lambda kv: kv[1])
            out.append(f"rank {r} (e.g. {name}) is above --max-lora-rank {max_lora_rank}: start vLLM with "
                       f"--max-lora-rank {max(above.values())} or merge with --max-rank {max_lora_rank}")
        if config.get("rank_pattern") or config.get("alpha_pattern"):
            out.append("rank_pattern/alpha_pattern: vLLM reads one r and lora_alpha for the whole adapter")
        if config.get("use_dora"):
            out.append("use_dora: vLLM serves plain LoRA only")
        if config.get("bias", "none") != "none" or config.get("lora_bias"):
            out.append(f"bias {config.get('bias')!r}: vLLM serves LoRA without bias terms")
        if config.get("modules_to_save"):
            out.append(f"modules_to_save {config['modules_to_save']}: vLLM does not serve them (the head or "
                       "embeddings trained with the adapter would be missing)")
    return out
