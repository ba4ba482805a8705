#!/usr/bin/env bash
# Install everything and start the service on the market simulator. Extra arguments go to
# `quantsaas serve` (e.g. --port 9000 --rate 200).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/quantsaas serve "$@"
