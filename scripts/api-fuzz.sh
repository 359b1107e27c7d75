#!/usr/bin/env bash
# schemathesis against the local server's /openapi.json, signed in as the
# demo admin (tests/api-fuzz/). A pinned schemathesis in .venv-fuzz/
# (created on first use). Fails on any server error, undocumented status,
# response that breaks the schema, or error body not of the JSON shape.
# The report and full output go to target/api-fuzz/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/venv.sh
ensure_venv .venv-fuzz scripts/requirements-fuzz.txt
cargo build -p local --locked
SCHEMATHESIS_TELEMETRY=false .venv-fuzz/bin/python tests/api-fuzz/run.py
