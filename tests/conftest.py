"""Shared fixtures: random PEFT LoRA adapters on disk, a tiny Llama built from a config."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

#: A small Llama-like set of modules with d_in ≠ d_out (GQA-style k/v).
SHAPES = {
    "model.layers.0.self_attn.q_proj": (24, 16),
    "model.layers.0.self_attn.k_proj": (8, 16),
    "model.layers.0.self_attn.v_proj": (8, 16),
    "model.layers.0.self_attn.o_proj": (16, 24),
    "model.layers.1.self_attn.q_proj": (24, 16),
    "model.layers.1.self_attn.v_proj": (8, 16),
}


def write_adapter(folder: Path, shapes: dict[str, tuple[int, int]] = SHAPES, *, r: int = 4,
                  alpha: float = 8, seed: int = 0, use_rslora: bool = False,
                  rank_pattern: dict | None = None, alpha_pattern: dict | None = None,
                  dtype: torch.dtype = torch.float32, extra_config: dict | None = None,
                  extra_tensors: dict | None = None, base: str = "tiny-base") -> Path:
    """Write a PEFT-format LoRA folder with random non-zero A and B."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (d_out, d_in) in shapes.items():
        rr = r
        for key, val in (rank_pattern or {}).items():
            if name == key or name.endswith("." + key) or name.endswith(key):
                rr = val
        tensors[f"base_model.model.{name}.lora_A.weight"] = torch.randn(rr, d_in, generator=g).to(dtype)
        tensors[f"base_model.model.{name}.lora_B.weight"] = torch.randn(d_out, rr, generator=g).to(dtype)
    tensors.update(extra_tensors or {})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha,
              "target_modules": sorted({n.rsplit(".", 1)[-1] for n in shapes}),
              "use_rslora": use_rslora, "rank_pattern": rank_pattern or {},
              "alpha_pattern": alpha_pattern or {}, "base_model_name_or_path": base,
              "lora_dropout": 0.0, "bias": "none"}
    config.update(extra_config or {})
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def scaled_factors(folder: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(c·B, A) in float64 straight from the files: ``dense_delta`` is their product."""
    from safetensors.torch import load_file

    cfg = json.loads((folder / "adapter_config.json").read_text())
    t = load_file(str(folder / "adapter_model.safetensors"))
    A = t[f"base_model.model.{name}.lora_A.weight"].double()
    B = t[f"base_model.model.{name}.lora_B.weight"].double()
    r = A.shape[0]
    alpha = cfg["lora_alpha"]
    for key, val in (cfg.get("alpha_pattern") or {}).items():
        if name.endswith(key):
            alpha = val
    c = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    return c * B, A


def dense_delta(folder: Path, name: str) -> torch.Tensor:
    """c·B·A in float64, computed straight from the files (independent of tada.adapters)."""
    B, A = scaled_factors(folder, name)
    return B @ A


def merged_delta(tensors: dict, name: str) -> torch.Tensor:
    A = tensors[f"base_model.model.{name}.lora_A.weight"].double()
    B = tensors[f"base_model.model.{name}.lora_B.weight"].double()
    return B @ A


def random_stats(shapes=SHAPES, seed: int = 1):
    from tada.probes import ProbeStats

    g = torch.Generator().manual_seed(seed)
    return ProbeStats({n: torch.randn(d_in, generator=g, dtype=torch.float64) for n, (_, d_in) in shapes.items()},
                      {"synthetic": True})


@pytest.fixture(scope="session", autouse=True)
def private_cache():
    """The suite's own tada cache (probe statistics, vision conversions): a temporary folder that
    is removed at the end, never ``~/.cache/tada`` (115 MB stayed there after a run). Debian's
    Fashion-MNIST files, when the user's cache already holds them unpacked, are linked in rather
    than fetched again (read only)."""
    import os
    import shutil
    import tempfile

    from tada._util import cache_root

    user = cache_root()
    tmp = Path(tempfile.mkdtemp(prefix="tada-test-cache-"))
    fashion = user / "debian" / "dataset-fashion-mnist"
    if fashion.is_dir():
        (tmp / "debian").mkdir()
        (tmp / "debian" / fashion.name).symlink_to(fashion, target_is_directory=True)
    before = os.environ.get("TADA_CACHE")
    os.environ["TADA_CACHE"] = str(tmp)
    try:
        yield tmp
    finally:
        if before is None:
            os.environ.pop("TADA_CACHE", None)
        else:
            os.environ["TADA_CACHE"] = before
        shutil.rmtree(tmp, ignore_errors=True)  # the link only, not what it points to


@pytest.fixture
def pair(tmp_path):
    """A task adapter (r=4, alpha=8) and a domain adapter (r=6, rsLoRA, rank_pattern) of the same modules."""
    task = write_adapter(tmp_path / "task", r=4, alpha=8, seed=0)
    domain = write_adapter(tmp_path / "domain", r=6, alpha=12, seed=1, use_rslora=True,
                           rank_pattern={"v_proj": 3}, alpha_pattern={"o_proj": 5})
    return task, domain


def tiny_llama_config(**kw):
    from transformers import LlamaConfig

    cfg = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
               bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    cfg.update(kw)
    return LlamaConfig(**cfg)


WORDS = ("the a of and to in is was for on with as by at from cell gene protein heart brain blood "
         "river city king war music film book team game light water fire stone tree bird").split() + \
    ["Question", "Answer", ":", ".", "A", "B", "C", "D"]


def tiny_tokenizer():
    """A word-level fast tokenizer with <pad>=0, <s>=1 (prepended), </s>=2, <unk>=3; vocab < 64."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for w in WORDS:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", padding_side="right")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny random LlamaForCausalLM + tokenizer saved as a local model folder."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_llama")
    model = LlamaForCausalLM(tiny_llama_config())
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def llama_shapes(model) -> dict[str, tuple[int, int]]:
    return {n: (m.out_features, m.in_features) for n, m in model.named_modules()
            if n.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj", "o_proj")}


def write_probe(path: Path, n: int = 12, seed: int = 0) -> Path:
    import random

    rng = random.Random(seed)
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
                              for _ in range(n)) + "\n")
    return path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``tada ARGS`` in-process through ``tada.cli.main``: (exit code, stdout, stderr)."""
    from tada.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def adapters(tmp_path):
    """Two small adapters of the same modules (task seed 1, domain seed 2)."""
    return write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)


def tada_merge(adapters, **params):
    """A TaDA merge of ``adapters`` on random probe statistics, with ``params``."""
    import tada

    task, domain = adapters
    return tada.merge(task, domain, params=params, domain_stats=random_stats(), general_stats=random_stats(seed=3),
                      progress=False)


@pytest.fixture
def umask022():
    """The usual umask 022 for the test (modes 0644/0755 expected), restored afterwards."""
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)
