# tests/e2e/common.sh — sourced by the e2e tests: paths and helpers.
# CTest sets CTUNE, CTUNE_ROOT, CTUNE_SHARED, CTUNE_CACHE, CTUNE_BUILD.
set -euo pipefail
: "${CTUNE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CTUNE:=$CTUNE_ROOT/build/ctune}"
: "${CTUNE_SHARED:=$CTUNE_ROOT/../shared}"
: "${CTUNE_CACHE:=$HOME/.cache/ctune}"
: "${CTUNE_BUILD:=$CTUNE_ROOT/build}"
PY="$CTUNE_CACHE/venv/bin/python"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ctune-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0
PASSES=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { PASSES=$((PASSES + 1)); }
need_python() {
  if [ ! -x "$PY" ]; then
    echo "SKIP: the Python reference stack is not installed at $PY (run scripts/setup.sh)"
    exit 77
  fi
}
finish() {
  echo "$(basename "$0"): $PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
