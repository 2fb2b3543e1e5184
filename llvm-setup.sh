#!/usr/bin/env bash
# Installs the LLVM 19 development packages evmc-native builds against, from
# Debian's own archive only. Safe to run repeatedly: it exits early when
# everything is already present.
set -euo pipefail

PKGS=(llvm-19-dev libpolly-19-dev libzstd-dev zlib1g-dev libz3-dev libxml2-dev libffi-dev pkg-config build-essential)
LLVM_PREFIX=/usr/lib/llvm-19

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ] && [ -x "$LLVM_PREFIX/bin/llvm-config" ]; then
    echo "llvm-setup: LLVM 19 already installed at $LLVM_PREFIX ($("$LLVM_PREFIX/bin/llvm-config" --version))"
    exit 0
fi

echo "llvm-setup: missing packages: ${missing[*]}"

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "llvm-setup: error: installing packages needs root." >&2
        echo "llvm-setup: run as root, or: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
else
    SUDO=
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "llvm-setup: error: apt-get not found; this script supports Debian (bookworm or later) only." >&2
    echo "llvm-setup: install LLVM 19 development files yourself and set LLVM_SYS_191_PREFIX." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update; then
    echo "llvm-setup: error: 'apt-get update' failed; check the network and /etc/apt/sources.list*." >&2
    exit 1
fi
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
    echo "llvm-setup: error: 'apt-get install ${missing[*]}' failed." >&2
    echo "llvm-setup: LLVM 19 is in Debian bookworm's main archive; check that it is enabled." >&2
    exit 1
fi

if [ ! -x "$LLVM_PREFIX/bin/llvm-config" ]; then
    echo "llvm-setup: error: $LLVM_PREFIX/bin/llvm-config missing after install." >&2
    exit 1
fi
echo "llvm-setup: installed LLVM $("$LLVM_PREFIX/bin/llvm-config" --version) at $LLVM_PREFIX"
