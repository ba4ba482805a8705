#!/usr/bin/env bash
# Install everything and run every check: ruff (lint + format), mypy, the layer contracts
# (import-linter), the whole test suite, then
# the dashboard's type check, unit tests, build and end-to-end tests (Debian Chromium against a
# real `quantsaas serve` on the simulator, started and stopped by Playwright).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

step_start=$SECONDS
step() {
    if [ -n "${step_name:-}" ]; then echo "   ($step_name: $((SECONDS - step_start)) s)"; fi
    step_name="$1"
    step_start=$SECONDS
    echo "== $1"
}

step "install (python)"
bash scripts/bootstrap.sh dev
step "install (web: npm ci)"
bash scripts/web.sh install
step "install (chromium)"
bash scripts/web.sh browser

step "install (redis-server)"
if [ ! -x /usr/bin/redis-server ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
/usr/bin/redis-server --version

step "install (postgresql)"
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
ls /usr/lib/postgresql/*/bin/postgres

step "ruff"
.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
step "mypy"
.venv/bin/mypy
step "import-linter (layer contracts in pyproject.toml)"
.venv/bin/lint-imports
step "pytest"
.venv/bin/pytest
step "web: tsc --noEmit"
(cd web && npx tsc --noEmit -p tsconfig.json)
step "web: vitest"
(cd web && npx vitest run)
step "web: vite build"
bash scripts/web.sh build
step "web: playwright e2e"
E2E_PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export E2E_PORT
(cd web && npx playwright test)
step "done"
echo "== all checks passed"
