#!/usr/bin/env bash
# Install everything, build the dashboard and start the service on the market simulator; the
# dashboard is at the printed URL. Extra arguments go to `quantsaas serve` (e.g. --port 9000 --rate 200).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh client,examples
bash scripts/web.sh install
bash scripts/web.sh build
# the demo: anonymous visitors get the `demo` tier (the simulator only); a production start
# (`quantsaas serve` without it) answers anonymous callers with the public, delayed view only
exec .venv/bin/quantsaas serve --anonymous-tier demo "$@"
