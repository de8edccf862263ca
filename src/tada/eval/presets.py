"""Named benchmark configurations for ``tada bench --preset NAME``."""
from __future__ import annotations

from ..errors import TadaError

PAPER_DATASETS = ["medmcqa", "medqa", "sciq", "arc_challenge", "mmlu_cs", "mmlu_college_bio"]

PRESETS: dict[str, dict] = {
    # The paper's language setting (Table 3): Llama-2-7B, six datasets, 3 shots, 500 questions
    # each. The paper's adapters are not public: give your own with --task/--domain, and probes
    # with --domain-probe/--general-probe (or put them in a YAML config).
    "llama2-7b-medical": {
        "name": "llama2-7b-medical",
        "base": "meta-llama/Llama-2-7b-hf",
        "datasets": PAPER_DATASETS,
        "shots": 3,
        "limit": 500,
        "scoring": ["letter"],
        "device": "auto",
        "model_dtype": "bfloat16",
        "out": "runs/llama2-7b-medical",
    },
}


def preset(name: str) -> dict:
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise TadaError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None
