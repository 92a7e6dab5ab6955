#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, format check, type check, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy  # the files and the strictness per module are in pyproject.toml [tool.mypy]
exec .venv/bin/python -m pytest "$@"
