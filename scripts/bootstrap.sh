#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install the project into it. Sourced by run.sh and check.sh.
# Usage: bootstrap.sh [extras]   e.g. "dev"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Quant-SaaS needs Python 3.11 or newer as '$PYTHON' (set PYTHON=... to choose one)." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
extras="${1:-}"
target="."
if [ -n "$extras" ]; then
    target=".[$extras]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
# The editable install leaves our modules as source, and where PYTHONDONTWRITEBYTECODE is set
# (CI images, this dev machine) every start would compile them again: ~60 ms of the ~0.55 s
# to the first /health (bench/bench_startup.py). A stale .pyc is only ignored, never wrong.
.venv/bin/python -m compileall -q src/quantsaas
