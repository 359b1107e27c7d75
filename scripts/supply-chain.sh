#!/usr/bin/env bash
# Supply-chain checks (part of the test command): known advisories from the
# RustSec database, licenses, banned crates and sources, as deny.toml says.
# Installs cargo-deny from crates.io into ~/.cargo/bin on first use (kept
# between runs) and prepares the advisory database from the copy in
# ../shared/advisory-db (ADVISORY_DB overrides), since this machine cannot
# reach its git repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $DENY_VERSION"; then
    cargo install --locked cargo-deny --version "$DENY_VERSION"
fi

# cargo-deny opens the database as a git repository, in the folder it names
# after the database's URL, under deny.toml's db-path.
# The copy sits beside the repository in the workplace (../shared); a clone
# elsewhere on the machine finds it at its absolute place.
source=""
for candidate in "${ADVISORY_DB:-}" ../shared/advisory-db /work/shared/advisory-db; do
    if [ -n "$candidate" ] && [ -f "$candidate/SOURCE.md" ] && [ -d "$candidate/crates" ]; then
        source=$candidate
        break
    fi
done
if [ -z "$source" ]; then
    echo "no advisory database copy found: set ADVISORY_DB to a folder holding one (crates/, SOURCE.md)" >&2
    exit 1
fi
db=target/advisory-dbs/advisory-db-3157b0e258782691
if [ ! -d "$db/.git" ] || ! diff -rq --exclude=.git "$source" "$db" >/dev/null; then
    # Committed at the copy's own date, so cargo-deny judges its real age.
    date=$(grep -o '([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\})' "$source/SOURCE.md" | head -1 | tr -d '()')
    rm -rf "$db" && mkdir -p "$(dirname "$db")" && cp -R "$source" "$db"
    git -C "$db" init -q
    git -C "$db" add -A
    GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
        git -C "$db" -c user.name=supply-chain -c user.email=supply-chain@localhost \
        commit -qm "RustSec advisory database, copied from $source"
fi
echo "advisory database: $(git -C "$db" show -s --format=%cs HEAD), $(find "$db/crates" -name '*.md' | wc -l) advisories"

# cargo-deny reads the crate graph offline: every package must be fetched.
cargo fetch --locked --quiet
cargo deny --offline --locked check --hide-inclusion-graph advisories licenses bans sources
