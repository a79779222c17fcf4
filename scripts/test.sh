#!/usr/bin/env bash
# Install everything the tests need, then run lint, the schema check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/ruff check netplanx tests benchmarks examples scripts
.venv/bin/python -m pytest -n 4 -q "$@"
