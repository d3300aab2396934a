#!/usr/bin/env bash
# scripts/test.sh — set up (Debian packages + Python reference stack), build,
# and run the whole test suite with CTest (the README's second command).
#   scripts/test.sh            Release build in build/
#   scripts/test.sh --asan     AddressSanitizer + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "${1:-}" = "--asan" ]; then
  dir=build-asan
  scripts/build.sh $dir -DCT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  dir=build
  scripts/build.sh $dir
fi
cd $dir
ctest --output-on-failure -j2 --timeout 900
