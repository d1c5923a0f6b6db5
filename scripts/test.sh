#!/usr/bin/env bash
# Install everything, then run the whole test suite: lint, types, unit and integration tests
# (integration tests start real containers and need root; VM tests boot a throwaway qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
echo ">>> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo ">>> mypy --strict" >&2
.venv/bin/mypy
echo ">>> pytest" >&2
exec .venv/bin/python -m pytest -v --durations=20 "$@"
