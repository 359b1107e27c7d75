#!/usr/bin/env bash
# schemathesis against the local server's /openapi.json, signed in as the
# demo admin (tests/api-fuzz/). A pinned schemathesis in .venv-fuzz/
# (created on first use). Fails on any server error, undocumented status,
# response that breaks the schema, or error body not of the JSON shape.
# The report and full output go to target/api-fuzz/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want=$(sha256sum scripts/requirements-fuzz.txt | cut -d' ' -f1)
have=""
[[ -f .venv-fuzz/.requirements.sha256 ]] && have=$(cat .venv-fuzz/.requirements.sha256)
if [[ ! -x .venv-fuzz/bin/schemathesis || "$have" != "$want" ]]; then
  echo "installing schemathesis into .venv-fuzz/ (once)" >&2
  rm -rf .venv-fuzz
  python3 -m venv .venv-fuzz
  .venv-fuzz/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-fuzz.txt
  echo "$want" > .venv-fuzz/.requirements.sha256
fi
cargo build -p local --locked
SCHEMATHESIS_TELEMETRY=false .venv-fuzz/bin/python tests/api-fuzz/run.py
