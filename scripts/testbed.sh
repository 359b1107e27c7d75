#!/usr/bin/env bash
# Runs a command with the local AWS test bed: a Python virtualenv (.venv/)
# with pinned moto and cfn-lint, moto started on a free 127.0.0.1 port, and
# the AWS variables every SDK client reads pointed at it. moto is stopped by
# its PID when the command ends, whether it passed or not.
#
#   scripts/testbed.sh cargo test -p integration-tests -- store_contract
#   scripts/testbed.sh --venv-only          # just create/refresh .venv/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/venv.sh

ensure_venv .venv scripts/requirements-testbed.txt
if [[ "${1:-}" == "--venv-only" ]]; then
    exit 0
fi
if [[ $# -eq 0 ]]; then
    echo "usage: scripts/testbed.sh COMMAND [ARGS...]" >&2
    exit 2
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/testbed.XXXXXX")
.venv/bin/python scripts/testbed.py --port-file "$state/port" >"$state/moto.log" 2>&1 &
moto_pid=$!
stop_moto() {
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    rm -rf "$state"
}
trap stop_moto EXIT

for _ in $(seq 1 300); do
    [[ -s "$state/port" ]] && break
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "testbed: moto failed to start:" >&2
        cat "$state/moto.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ ! -s "$state/port" ]]; then
    echo "testbed: moto did not start within 30 s" >&2
    cat "$state/moto.log" >&2
    exit 1
fi
port=$(cat "$state/port")

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
export AWS_EC2_METADATA_DISABLED=true
# Nothing from the developer's own AWS set-up may leak into a test.
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
echo "testbed: moto on $AWS_ENDPOINT_URL (pid $moto_pid)" >&2

status=0
"$@" || status=$?
exit "$status"
