"""Questions per second of 3-shot letter scoring on SmolLM2-135M-Instruct (a benchmark, not a test).

    python benchmarks/eval_speed.py                          # MedMCQA (evals wheel), 48 questions
    python benchmarks/eval_speed.py --dataset mmlu_cs_offline --limit 100 --batch-sizes 1,8

For each batch size, scores the same questions with the few-shot prefix's KV cache reused and
without (every question re-encodes its prefix, batched with left padding), and reports
questions/s, forward tokens per question, and the tokens lm-evaluation-harness's per-option
requests would need. Checks that both paths predict the same letters. Prints a table and a final
JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def main(argv: list[str] | None = None) -> dict:
    from tada.eval.datasets import load_dataset_by_name
    from tada.eval.mcq import evaluate
    from tada.models import load_model, load_tokenizer, resolve_base, smollm2_gguf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="medmcqa_evals")
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--base", help="default: the embedded SmolLM2 GGUF")
    ap.add_argument("--model-dtype", default="float32", help="float32, bfloat16, …")
    args = ap.parse_args(argv)

    spec = resolve_base(args.base) if args.base else smollm2_gguf()
    model, tok = load_model(spec, dtype=args.model_dtype), load_tokenizer(spec)
    ds = load_dataset_by_name(args.dataset)
    rows = []
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        preds = {}
        for reuse in (True, False):
            t0 = time.perf_counter()
            res = evaluate(model, tok, ds, shots=args.shots, limit=args.limit, batch_size=bs, prefix_cache=reuse,
                           progress=False)
            dt = time.perf_counter() - t0
            preds[reuse] = [p["predicted"] for p in res.predictions]
            rows.append({"batch_size": bs, "prefix_reuse": reuse, "questions": res.n, "seconds": dt,
                         "questions_per_s": res.n / dt, "forward_tokens_per_q": res.tokens["per_question"],
                         "lm_eval_style_tokens_per_q": res.tokens["lm_eval_style_per_question"],
                         "accuracy": res.accuracy})
        agree = sum(a == b for a, b in zip(preds[True], preds[False])) / len(preds[True])
        rows[-1]["agreement_with_reuse"] = rows[-2]["agreement_with_reuse"] = agree
    print(f"{spec.name} ({args.model_dtype}), {ds.name}, {args.shots}-shot letter scoring, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'batch':>5s} {'reuse':>6s} {'q/s':>7s} {'tokens/q':>9s} {'lm-eval tokens/q':>17s} {'acc':>6s} {'agree':>6s}")
    for r in rows:
        print(f"{r['batch_size']:5d} {str(r['prefix_reuse']):>6s} {r['questions_per_s']:7.2f} "
              f"{r['forward_tokens_per_q']:9.1f} {r['lm_eval_style_tokens_per_q']:17.1f} {r['accuracy']:6.3f} "
              f"{r['agreement_with_reuse']:6.3f}")
    result = {"base": spec.name, "model_dtype": args.model_dtype, "dataset": ds.name, "shots": args.shots, "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
