#!/usr/bin/env bash
# scripts/setup.sh — install everything ctune needs on a fresh Debian 12 machine
# (idempotent: only what is missing is installed).
#   - Debian packages: compiler, cmake, PCRE2, OpenBLAS, clang (fuzzers)
#   - a Python venv in $CTUNE_CACHE/venv with the reference stack (PyTorch,
#     transformers, tokenizers, PEFT, gguf) used by the tests
# Usage: scripts/setup.sh [--no-python]
set -euo pipefail
cd "$(dirname "$0")/.."
CTUNE_CACHE=${CTUNE_CACHE:-$HOME/.cache/ctune}
export CTUNE_CACHE

need_pkgs=()
for p in build-essential cmake pkg-config libpcre2-dev libopenblas-dev clang python3-venv; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_pkgs[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ "${1:-}" != "--no-python" ]; then
  venv="$CTUNE_CACHE/venv"
  stamp="$venv/.ctune-requirements"
  if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating Python venv at $venv"
    mkdir -p "$CTUNE_CACHE"
    python3 -m venv "$venv"
  fi
  if ! cmp -s scripts/requirements.txt "$stamp"; then
    echo "setup: installing Python reference packages into $venv (first time: a few minutes)"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    "$venv/bin/pip" install -q -r scripts/requirements.txt
    cp scripts/requirements.txt "$stamp"
  fi
fi
echo "setup: ok (cache: $CTUNE_CACHE)"
