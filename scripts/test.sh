#!/usr/bin/env bash
# The test suite (slow real-model runs and benchmarks are excluded: pytest -m slow runs them).
TADA_EXTRAS="[test]"
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
python -m pytest -q "$@"
