#!/usr/bin/env bash
# Every check, as CI runs it: formatting, lints, template lint, supply
# chain (advisories, licenses, sources), all tests
# (unit, contract, integration) against the local AWS test bed, and the
# browser journey in headless Chromium. Installs what it needs (.venv/ with
# moto and cfn-lint, Debian's chromium, playwright-core) on first use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "test bed (.venv/)"
scripts/testbed.sh --venv-only

step "cfn-lint"
.venv/bin/cfn-lint template.yaml infra/*.yaml

step "sam validate --lint"
scripts/sam-validate.sh

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "supply chain (cargo-deny: advisories, licenses, bans, sources)"
scripts/supply-chain.sh

step "cargo test (with moto)"
scripts/testbed.sh cargo test --workspace --locked

step "browser journey (headless Chromium)"
scripts/browser-test.sh

step "API fuzzing (schemathesis against the local server)"
scripts/api-fuzz.sh
