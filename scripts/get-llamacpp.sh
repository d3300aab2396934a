#!/usr/bin/env bash
# scripts/get-llamacpp.sh — build the llama.cpp peer (for benchmarks and
# cross-checks) from the sources the llama-cpp-python sdist on PyPI vendors.
#
# Nothing of llama.cpp enters this repository: the sdist is downloaded with pip
# (by package name, pinned version and sha256), unpacked and built under
#   $CTUNE_CACHE/peers/llama.cpp/      (CTUNE_CACHE defaults to ~/.cache/ctune)
#     llama_cpp_python-<ver>.tar.gz    the sdist
#     src/                             its vendor/llama.cpp
#     build/                           CMake build tree (CPU only, Release, static)
#     bin/                             llama-bench llama-perplexity llama-simple
#                                      llama-completion llama-quantize llama-tokenize
#     VERSION                          what was built, from what, with which flags
# Idempotent: a finished build (bin/ + VERSION matching this script's pins and
# flags) is reused; an interrupted one resumes where CMake left it.
#
# Usage: scripts/get-llamacpp.sh [--force]
# Env:   CTUNE_CACHE, CTUNE_PY (python with pip; default $CTUNE_CACHE/venv/bin/python
#        or python3), LLAMACPP_JOBS (default 2), LLAMACPP_NICE (default 19).
#
# Notes: llama-cli in this llama.cpp version is built on the HTTP server code,
# so the plain text-generation tools built here are llama-completion (the
# classic main) and llama-simple. The sdist has no git metadata, so the commit
# is taken from llama-cpp-python's CHANGELOG and passed to CMake.
set -euo pipefail

PY_PKG=llama-cpp-python
PY_VER=${LLAMACPP_PY_VERSION:-0.3.36}
# sha256 of llama_cpp_python-0.3.36.tar.gz as served by PyPI (sdists are immutable).
PY_SHA256_0_3_36=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
JOBS=${LLAMACPP_JOBS:-2}
NICE=${LLAMACPP_NICE:-19}
TARGETS=(llama-bench llama-perplexity llama-simple llama-completion llama-quantize llama-tokenize)

CTUNE_CACHE=${CTUNE_CACHE:-$HOME/.cache/ctune}
PEER=$CTUNE_CACHE/peers/llama.cpp
SDIST=$PEER/llama_cpp_python-$PY_VER.tar.gz
SRC=$PEER/src
BUILD=$PEER/build
BIN=$PEER/bin

say() { echo "get-llamacpp: $*"; }
die() { echo "get-llamacpp: error: $*" >&2; exit 1; }

force=0
[ "${1:-}" = "--force" ] && force=1

if [ -n "${CTUNE_PY:-}" ]; then PY=$CTUNE_PY
elif [ -x "$CTUNE_CACHE/venv/bin/python" ]; then PY=$CTUNE_CACHE/venv/bin/python
else PY=python3; fi
for t in cmake g++ tar sha256sum; do
  command -v "$t" >/dev/null || die "'$t' not found (scripts/setup.sh installs the toolchain)"
done

CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON
  -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=ON
  -DLLAMA_BUILD_TOOLS=ON
)

# ---- 0. already done? ------------------------------------------------------
want_stamp="llama-cpp-python $PY_VER | flags: ${CMAKE_FLAGS[*]} | targets: ${TARGETS[*]}"
if [ $force = 0 ] && [ -f "$PEER/VERSION" ] && grep -qxF "stamp: $want_stamp" "$PEER/VERSION"; then
  ok=1
  for t in "${TARGETS[@]}"; do [ -x "$BIN/$t" ] || ok=0; done
  if [ $ok = 1 ]; then
    say "already built: $BIN"
    sed -n '1,6p' "$PEER/VERSION"
    exit 0
  fi
fi
mkdir -p "$PEER"

# ---- 1. the sdist ----------------------------------------------------------
verify_sdist() {
  [ -f "$SDIST" ] || return 1
  local want_var="PY_SHA256_${PY_VER//./_}" got
  got=$(sha256sum "$SDIST" | cut -d' ' -f1)
  if [ -n "${!want_var:-}" ]; then
    [ "$got" = "${!want_var}" ] || { say "sha256 mismatch for $SDIST ($got), downloading again"; rm -f "$SDIST"; return 1; }
  fi
  return 0
}
if ! verify_sdist; then
  say "downloading $PY_PKG==$PY_VER sdist from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$tmp" "$PY_PKG==$PY_VER" \
    || die "pip download of $PY_PKG==$PY_VER failed"
  f=$(ls "$tmp"/*.tar.gz 2>/dev/null | head -n1)
  [ -n "$f" ] || die "pip produced no .tar.gz sdist in $tmp: $(ls "$tmp")"
  mv "$f" "$SDIST"
  verify_sdist || die "downloaded sdist failed its sha256 check"
fi
SDIST_SHA=$(sha256sum "$SDIST" | cut -d' ' -f1)
say "sdist: $SDIST ($(stat -c %s "$SDIST") bytes, sha256 $SDIST_SHA)"

# ---- 2. sources ------------------------------------------------------------
top=llama_cpp_python-$PY_VER
if [ $force = 1 ] || [ ! -f "$SRC/.ctune-from" ] || [ "$(cat "$SRC/.ctune-from")" != "$SDIST_SHA" ]; then
  say "unpacking $top/vendor/llama.cpp -> $SRC"
  rm -rf "$SRC" "$BUILD"
  mkdir -p "$SRC"
  tar -xzf "$SDIST" -C "$SRC" --strip-components=3 "$top/vendor/llama.cpp" \
    || die "the sdist has no $top/vendor/llama.cpp"
  [ -f "$SRC/CMakeLists.txt" ] || die "$SRC/CMakeLists.txt missing after unpacking"
  rm -f "$SRC/.git"   # a dangling submodule pointer: keep git from looking upward
  echo "$SDIST_SHA" > "$SRC/.ctune-from"
fi

# The llama.cpp commit llama-cpp-python vendors, from its CHANGELOG
# ("feat: update llama.cpp to ggml-org/llama.cpp@<sha>" under [<ver>]).
COMMIT=$(tar -xzOf "$SDIST" "$top/CHANGELOG.md" 2>/dev/null \
  | awk -v v="## [$PY_VER]" '$0==v{f=1;next} /^## \[/{if(f)exit} f' \
  | grep -o 'llama\.cpp@[0-9a-f]\{7,40\}' | head -n1 | cut -d@ -f2 || true)
COMMIT=${COMMIT:-unknown}
say "llama.cpp commit (from llama-cpp-python $PY_VER CHANGELOG): $COMMIT"

# ---- 3. build --------------------------------------------------------------
say "configuring (CPU only, Release, GGML_NATIVE=ON)"
nice -n "$NICE" cmake -S "$SRC" -B "$BUILD" "${CMAKE_FLAGS[@]}" \
  -DLLAMA_BUILD_COMMIT="$COMMIT" >"$PEER/cmake-configure.log" 2>&1 \
  || { tail -n 30 "$PEER/cmake-configure.log" >&2; die "cmake configure failed (log: $PEER/cmake-configure.log)"; }
say "building ${TARGETS[*]} with nice -n $NICE, -j$JOBS (first time: 5-15 min on 2 cores)"
start=$(date +%s)
if ! nice -n "$NICE" cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}" >"$PEER/cmake-build.log" 2>&1; then
  grep -n -m5 -i 'error' "$PEER/cmake-build.log" >&2 || true
  tail -n 20 "$PEER/cmake-build.log" >&2
  die "build failed (log: $PEER/cmake-build.log)"
fi
say "built in $(( $(date +%s) - start )) s"

mkdir -p "$BIN"
for t in "${TARGETS[@]}"; do
  [ -x "$BUILD/bin/$t" ] || die "$BUILD/bin/$t was not produced"
  cp -f "$BUILD/bin/$t" "$BIN/$t"
done

# ---- 4. record -------------------------------------------------------------
reported=$("$BIN/llama-bench" --version 2>&1 | grep -i -m1 'version' || true)
{
  echo "llama.cpp peer for ctune benchmarks"
  echo "from: PyPI $PY_PKG==$PY_VER sdist (vendor/llama.cpp), sha256 $SDIST_SHA"
  echo "commit: $COMMIT"
  echo "reported: ${reported:-?}"
  echo "compiler: $(g++ --version | head -n1)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
  echo "stamp: $want_stamp"
} > "$PEER/VERSION"
say "done: $BIN"
cat "$PEER/VERSION"
