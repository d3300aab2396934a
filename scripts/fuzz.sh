#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] — build the libFuzzer targets (clang, ASan+UBSan)
# and run each for SECONDS (default 60) from its seeds; fails on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCT_FUZZ=ON -DCT_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
for f in fuzz/fuzz_*.c; do
  name=$(basename "$f" .c)
  corpus=build-fuzz/corpus-$name
  mkdir -p "$corpus"
  seeds=fuzz/seeds/${name#fuzz_}
  echo "fuzz: $name for ${secs}s"
  args=("$corpus")
  [ -d "$seeds" ] && args+=("$seeds")
  build-fuzz/$name -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=0 "${args[@]}" 2>&1 | tail -n 2
done
echo "fuzz: no crashes"
