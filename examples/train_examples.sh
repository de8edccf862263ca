#!/usr/bin/env bash
# Train the two example adapters on the embedded base (SmolLM2-135M-Instruct GGUF, fp32, CPU).
# Data: python examples/build_data.py (seed 0). Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
# Thread counts as the shipped adapters were trained (task: 1, domain: 2); the thread count can
# change the last bits of the result.

# Task adapter: 4-option "which title does this passage describe?" questions, loss on " A".." D".
OMP_NUM_THREADS=1 python -m tada train --data examples/data/task_train.jsonl --out examples/adapters/task \
  --mode answer --r 16 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
  --steps 230 --lr 1e-3 --batch-size 8 --max-length 256 --seed 0 --device cpu

# Domain adapter: "Term: definition" texts of 400 Human Phenotype Ontology + 400 Gene Ontology
# terms (examples/data/SOURCES.md), loss on every token, 5 epochs (500 steps x 8 = 4000 texts):
# enough repetitions for the definitions to be remembered, which eval/domain_trained.jsonl asks.
# Seed 1, not 0: PEFT initialises lora_A randomly from the torch seed, and two adapters trained
# from the same seed keep nearly the same A (cosine 0.83 after 400 steps here), so every singular
# direction overlaps in input space and TaDA's filter (Eq. 5) would drop them all.
OMP_NUM_THREADS=2 python -m tada train --data examples/data/domain_train.jsonl --out examples/adapters/domain \
  --mode lm --r 16 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
  --steps 500 --lr 1e-3 --batch-size 8 --max-length 128 --seed 1 --device cpu

# Format task adapter (issue #16): WordNet nouns asked as 'Question: What does "<word>" mean?\nAnswer:'
# with the answer ' {"definition": "<gloss>"}', loss on the answer tokens only; 2,000 words, none
# biomedical (examples/data/SOURCES.md). Seed 0 like the task adapter: it is merged with the domain
# adapter (seed 1), whose lora_A then differs. One thread, as it was trained.
OMP_NUM_THREADS=1 python -m tada train --data examples/data/task_format_train.jsonl --out examples/adapters/task-format \
  --mode answer --r 16 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
  --steps 230 --lr 1e-3 --batch-size 8 --max-length 128 --seed 0 --device cpu

# Per-ontology domain adapters (issue #19, K-way merging: task-format + domain-hpo + domain-go):
# exactly the joint domain recipe on each half of domain_train.jsonl (data/domain_hpo_train.jsonl,
# data/domain_go_train.jsonl: the same 400 + 400 trained terms, same order and format), 250 steps
# each = 5 epochs over 400 texts, as the joint adapter had over 800. Seeds 1 and 2: two adapters
# trained from the same seed keep nearly the same lora_A (see the domain adapter above), so every
# direction of the two domain adapters would overlap; seed 2 also differs from task-format's 0.
# Trained concurrently, one thread each, on the shared 2-core machine.
OMP_NUM_THREADS=1 python -m tada train --data examples/data/domain_hpo_train.jsonl --out examples/adapters/domain-hpo \
  --mode lm --r 16 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
  --steps 250 --lr 1e-3 --batch-size 8 --max-length 128 --seed 1 --device cpu
OMP_NUM_THREADS=1 python -m tada train --data examples/data/domain_go_train.jsonl --out examples/adapters/domain-go \
  --mode lm --r 16 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
  --steps 250 --lr 1e-3 --batch-size 8 --max-length 128 --seed 2 --device cpu
