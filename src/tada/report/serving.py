"""What a serving stack or loader would refuse in an adapter folder (``tada check``).

The rules are the documented limits of each target, checked on ``adapter_config.json`` and the
weights' shapes only (no model is loaded):

- ``vllm`` (its LoRA loader): every module's rank ≤ ``--max-lora-rank`` (vLLM's default 16), which
  vLLM takes only from a fixed list (:data:`VLLM_MAX_LORA_RANKS`): the advice names the smallest
  value of that list ≥ the adapter's rank, and a rank above its largest cannot be served at all;
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
#: The values vLLM accepts for ``--max-lora-rank`` (any other is refused at start-up): ``MaxLoRARanks
#: = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]`` in vLLM's ``vllm/config/lora.py``
#: (github.com/vllm-project/vllm, main at 01230b40; older releases: ``possible_max_ranks`` in
#: ``LoRAConfig.__post_init__``, vllm/config.py, e.g. (8, 16, 32, 64, 128, 256, 320, 512)).
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_max_lora_rank(rank: int) -> int | None:
    """The smallest ``--max-lora-rank`` vLLM accepts that serves ``rank`` (None: above vLLM's maximum)."""
    return next((r for r in VLLM_MAX_LORA_RANKS if r >= rank), None)


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
        if max_lora_rank not in VLLM_MAX_LORA_RANKS:
            out.append(f"--max-lora-rank {max_lora_rank}: vLLM accepts only one of "
                       f"{', '.join(map(str, VLLM_MAX_LORA_RANKS))}")
        if above:
            name, r = max(above.items(), key=lambda kv: kv[1])
            serving = vllm_max_lora_rank(r)
            cap = max(x for x in VLLM_MAX_LORA_RANKS if x <= max_lora_rank) if max_lora_rank >= 1 else 1
            if serving is None:
                out.append(f"rank {r} (e.g. {name}) is above vLLM's largest --max-lora-rank "
                           f"{VLLM_MAX_LORA_RANKS[-1]}: vLLM cannot serve it; merge with --max-rank "
                           f"{VLLM_MAX_LORA_RANKS[-1]} (or lower)")
            else:
                out.append(f"rank {r} (e.g. {name}) is above --max-lora-rank {max_lora_rank}: start vLLM with "
                           f"--max-lora-rank {serving} (the smallest value vLLM accepts ≥ {r}) or merge with "
                           f"--max-rank {cap}")
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
