#!/usr/bin/env bash
# The S3-compatible server the artefact-store tests run against: s3s-fs
# (from crates.io), which serves a directory over the S3 API.
#
#   scripts/s3-server.sh install        build it once into target/tools; print its path
#   scripts/s3-server.sh run DIR PORT   serve DIR on 127.0.0.1:PORT (foreground;
#                                       access key "evmc", secret "evmc-secret")
#
# The tests call `install` when the binary is missing and start the server
# themselves, so that each test owns (and stops) its server process.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${EVMC_TOOLS_DIR:-$root/target/tools}"
bin="$tools/bin/s3s-fs"
# Pinned: the tests rely on its command line and its conditional PUT.
version="0.14.1"

install() {
    if [ ! -x "$bin" ]; then
        # Built in a target directory of its own, kept for reinstalls.
        CARGO_TARGET_DIR="$tools/build" cargo install s3s-fs --version "$version" \
            --locked --features binary --root "$tools" --quiet >&2
    fi
    echo "$bin"
}

case "${1:-}" in
install) install ;;
run)
    dir="${2:?usage: $0 run DIR PORT}"
    port="${3:?usage: $0 run DIR PORT}"
    install >/dev/null
    mkdir -p "$dir"
    exec "$bin" --host 127.0.0.1 --port "$port" \
        --access-key evmc --secret-key evmc-secret "$dir"
    ;;
*)
    echo "usage: $0 install | run DIR PORT" >&2
    exit 2
    ;;
esac
