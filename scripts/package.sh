#!/usr/bin/env bash
# Packages every function as `sam build` does for `sam deploy`
# (BuildMethod rust-cargolambda: cargo-lambda cross-compiles with zig for
# provided.al2023), then prints each bootstrap's size and the highest GLIBC
# version it needs (provided.al2023 has 2.34).
#
#   scripts/package.sh            # arm64, as the template says
#   ARCH=x86_64 scripts/package.sh
#
# Installs the SAM CLI and cargo-lambda (from PyPI, which brings zig) into
# .venv-sam/, and the Rust target with rustup. Not part of the test command:
# a cross build of the four functions takes several minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

arch="${ARCH:-arm64}"
case "$arch" in
  arm64) target=aarch64-unknown-linux-gnu ;;
  x86_64) target=x86_64-unknown-linux-gnu ;;
  *) echo "ARCH is arm64 or x86_64" >&2; exit 2 ;;
esac
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target" || {
    echo "cannot install the $target target; try ARCH=x86_64" >&2
    exit 1
  }
fi

scripts/sam-validate.sh >/dev/null
if [[ ! -x .venv-sam/bin/cargo-lambda ]]; then
  .venv-sam/bin/pip install --quiet --disable-pip-version-check "cargo-lambda==$(cat scripts/cargo-lambda.version)"
fi
export PATH="$PWD/.venv-sam/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}"

template=template.yaml
if [[ "$arch" != arm64 ]]; then
  template=$(mktemp --suffix=.yaml)
  sed "s/Architectures: \[arm64\]/Architectures: [$arch]/" template.yaml > "$template"
fi
sam build --template-file "$template" --beta-features --build-dir .aws-sam/build >&2

printf '%-20s %10s  %s\n' function size "highest GLIBC"
status=0
for dir in .aws-sam/build/*Function; do
  binary="$dir/bootstrap"
  size=$(stat -c %s "$binary")
  glibc=$(readelf --dyn-syms --wide "$binary" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  printf '%-20s %7.1f MB  %s\n' "$(basename "$dir")" "$(echo "$size / 1048576" | bc -l)" "${glibc:-none}"
  if [[ -n "$glibc" ]] && [[ "$(printf '%s\nGLIBC_2.34\n' "$glibc" | sort -V | tail -1)" != GLIBC_2.34 ]]; then
    echo "  needs more than GLIBC 2.34" >&2
    status=1
  fi
done
exit $status
