"""Cost of probe extraction's hooks over a plain forward pass on the same tokens (a benchmark).

    python benchmarks/probe_overhead.py                       # SmolLM2-135M, examples' probes
    python benchmarks/probe_overhead.py --device cuda --base meta-llama/Llama-2-7b-hf

Runs the probe inputs exactly as ``extract_stats`` does (each input unpadded, batch 1, no KV
cache) twice: plain forwards, and ``extract_stats`` with a pre-hook on every q/k/v/o module.
Best of ``--repeat`` for each, alternating; prints both times, tokens/s and the overhead, and a
final JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    from tada.models import load_model, load_tokenizer, resolve_base, smollm2_gguf
    from tada.probes import extract_stats, read_probe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="model folder or hub id (default: the embedded SmolLM2)")
    ap.add_argument("--probes", default=",".join(str(ROOT / "examples" / "probes" / f) for f in ("domain.txt", "general.txt")))
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model-dtype")
    args = ap.parse_args(argv)

    spec = resolve_base(args.base) if args.base else smollm2_gguf()
    model, tok = load_model(spec, device=args.device, dtype=args.model_dtype), load_tokenizer(spec)
    texts = [t for p in args.probes.split(",") for t in read_probe(p, args.n).items]
    modules = [n for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj", "o_proj")]
    device = next(model.parameters()).device
    encoded = [torch.tensor([ids], device=device) for ids in tok(texts, truncation=True, max_length=256)["input_ids"]]
    tokens = sum(int(x.numel()) for x in encoded)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    @torch.inference_mode()
    def plain() -> None:
        for ids in encoded:
            model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)

    def hooked() -> None:
        extract_stats(model, tok, texts, modules, progress=False)

    plain()  # warm-up
    best = {"plain": float("inf"), "hooked": float("inf")}
    for _ in range(args.repeat):
        for name, fn in (("plain", plain), ("hooked", hooked)):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - t0)
    overhead = best["hooked"] / best["plain"] - 1
    result = {"base": spec.name, "device": str(device), "inputs": len(texts), "tokens": tokens, "modules": len(modules),
              "plain_s": best["plain"], "hooked_s": best["hooked"], "overhead": overhead,
              "plain_tok_s": tokens / best["plain"], "torch_threads": torch.get_num_threads(), "repeat": args.repeat}
    print(f"{len(texts)} probe inputs, {tokens} tokens, {len(modules)} hooked modules on {device}")
    print(f"plain forward {best['plain']:.2f} s ({tokens / best['plain']:.0f} tok/s), with hooks {best['hooked']:.2f} s: "
          f"overhead {100 * overhead:+.1f}% (best of {args.repeat})")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
