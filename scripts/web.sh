#!/usr/bin/env bash
# Dashboard steps shared by run.sh and check.sh. Usage: web.sh install|build|browser
#   install  npm ci in web/ (never downloads a browser)
#   build    vite build into web/dist (served by the API at /)
#   browser  make sure Debian's Chromium is at /usr/bin/chromium (apt-get when missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

need_node() {
    if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
        echo "The dashboard needs Node.js 20.19+ with npm (found: $(node --version 2>/dev/null || echo none))." >&2
        exit 1
    fi
}

case "${1:-}" in
    install)
        need_node
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
        ;;
    build)
        need_node
        (cd web && npx vite build --logLevel warn)
        ;;
    browser)
        if [ ! -x /usr/bin/chromium ]; then
            SUDO=""
            if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
            $SUDO apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
        fi
        /usr/bin/chromium --version
        ;;
    *)
        echo "usage: $0 install|build|browser" >&2
        exit 2
        ;;
esac
