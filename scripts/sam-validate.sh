#!/usr/bin/env bash
# `sam validate --lint` on template.yaml with a pinned SAM CLI in .venv-sam/
# (created on first use). Offline: no credentials, telemetry off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/venv.sh
ensure_venv .venv-sam scripts/requirements-sam.txt
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}"
.venv-sam/bin/sam validate --lint --template template.yaml
