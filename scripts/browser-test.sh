#!/usr/bin/env bash
# The web page's journey in headless Chromium against the local server
# (tests/browser/journey.mjs). Installs what it needs: Debian's chromium
# (apt) and playwright-core (npm, from tests/browser/package-lock.json).
# Screenshots, the downloaded CSV and, on failure, the server's log go to
# target/browser-artifacts/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

chromium_path="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium_path" ]]; then
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  echo "installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends chromium >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
"$chromium_path" --version

if ! command -v node >/dev/null; then
  echo "node is needed for the browser test (Node.js 18 or later)" >&2
  exit 1
fi
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

cargo build -p local --locked
CHROMIUM="$chromium_path" node tests/browser/journey.mjs
