#!/usr/bin/env bash
# The test suite (slow real-model runs and benchmarks are excluded: pytest -m slow runs them).
TADA_EXTRAS="[test]"
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
# lint first (rules in pyproject.toml [tool.ruff]): one line per finding, fails the run
python -m ruff check src tests benchmarks examples
python -m mypy  # settings in pyproject.toml [tool.mypy]
lint-imports --no-cache  # the layer contracts of docs/architecture.md (pyproject.toml [tool.importlinter])
python -m pytest -q "$@"
