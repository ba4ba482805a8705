#!/usr/bin/env bash
# Install everything, build the dashboard and start the service on the market simulator; the
# dashboard is at the printed URL. Extra arguments go to `quantsaas serve` (e.g. --port 9000 --rate 200).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
bash scripts/web.sh install
bash scripts/web.sh build
exec .venv/bin/quantsaas serve "$@"
