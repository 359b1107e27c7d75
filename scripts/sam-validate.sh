#!/usr/bin/env bash
# `sam validate --lint` on template.yaml with a pinned SAM CLI in .venv-sam/
# (created on first use). Offline: no credentials, telemetry off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want=$(sha256sum scripts/requirements-sam.txt | cut -d' ' -f1)
have=""
[[ -f .venv-sam/.requirements.sha256 ]] && have=$(cat .venv-sam/.requirements.sha256)
if [[ ! -x .venv-sam/bin/sam || "$have" != "$want" ]]; then
  echo "installing the SAM CLI into .venv-sam/ (once)" >&2
  rm -rf .venv-sam
  python3 -m venv .venv-sam
  .venv-sam/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-sam.txt
  echo "$want" > .venv-sam/.requirements.sha256
fi
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}"
.venv-sam/bin/sam validate --lint --template template.yaml
