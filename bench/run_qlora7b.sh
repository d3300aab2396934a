#!/usr/bin/env bash
# bench/run_qlora7b.sh — one QLoRA training step on a Llama-2-7B-shaped model
# on this machine: peak RSS and step time for each frozen-base type, next to
# what `ctune plan` predicts, and the predicted requirement of what does not
# fit (LoRA over an F32 base, full fine-tuning). docs/qlora.md "7B".
#
# The model: bench/make_7b.py, RANDOM weights in Llama-2-7B's shapes, BF16
# (13.5 GB on disk; memory and speed depend on shapes, not values).
# Each configuration: build/bench_train in its own process (peak RSS is per
# process), B=1 sequence of T=256 tokens, LoRA r=16 (alpha 16, dropout 0)
# on every linear layer, bf16 products with f32 accumulation and f32
# master weights, gradient checkpointing, AdamW; W untimed warm-up steps
# (the first one faults the mapped base in), then R timed; --save makes the
# savers' copy of the adapter at the end, as `ctune train` does.
#   nf4   quantized on load from the BF16 file (bitsandbytes' NF4, double quant)
#   nf4*  the same, read in place from a pre-quantized Hugging Face
#         bitsandbytes checkpoint written by `ctune quantize` (when available)
#   q8    Q8_0 on load
#   bf16  the file's BF16 matrices in place
#
# Env: CTUNE_CACHE, BUILD_DIR (default build-bench), CTUNE_PY.
# Usage: bench/run_qlora7b.sh [-w WARMUP] [-r REPS] [--only nf4,q8,...] [--no-prequant]
# Output: the table on stdout; JSON lines and logs in out/bench-qlora7b-<UTC>/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CTUNE_CACHE=${CTUNE_CACHE:-$HOME/.cache/ctune}
export CTUNE_CACHE
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
W=1 R=1 ONLY="nf4,nf4*,q8,bf16" PREQ=1
while [ $# -gt 0 ]; do
  case $1 in
    -w) W=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-prequant) PREQ=0; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run_qlora7b: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "run_qlora7b: $*" >&2; }
if [ -n "${CTUNE_PY:-}" ]; then PY=$CTUNE_PY
elif [ -x "$CTUNE_CACHE/venv/bin/python" ]; then PY=$CTUNE_CACHE/venv/bin/python
else PY=python3; fi
OUT=$ROOT/out/bench-qlora7b-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

say "building ctune (Release) in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake.log" 2>&1 \
  || { tail -n 20 "$OUT/cmake.log" >&2; exit 1; }
cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_train ctune >>"$OUT/cmake.log" 2>&1 \
  || { grep -m10 -i error "$OUT/cmake.log" >&2; exit 1; }
BENCH=$BUILD_DIR/bench_train CT=$BUILD_DIR/ctune
M7=$("$PY" "$ROOT/bench/make_7b.py") || { say "make_7b.py failed"; exit 1; }
PQ=$CTUNE_CACHE/models/random/random-llama2-7B-nf4
if [ $PREQ = 1 ] && [[ ",$ONLY," == *",nf4*,"* ]]; then
  if "$CT" quantize --help >/dev/null 2>&1; then
    if [ ! -f "$PQ/config.json" ]; then
      say "writing the pre-quantized checkpoint $PQ (ctune quantize)"
      "$CT" quantize "$M7" -o "$PQ" >"$OUT/quantize.log" 2>&1 || { tail -n 5 "$OUT/quantize.log" >&2; PREQ=0; }
    fi
  else
    say "this ctune has no quantize command: skipping the pre-quantized row"; PREQ=0
  fi
fi

{
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) at the start"
  echo "ctune:     $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "model:     $M7 (RANDOM weights, Llama-2-7B shape, BF16)"
  echo "settings:  B=1, T=256, LoRA r=16 all-linear, bf16 products, checkpointing, $W warm-up + $R timed steps"
} | tee "$OUT/env.txt"

COMMON=(--targets all --lora-r 16 -b 1 -T 256 --bf16 --checkpointing -t 2 -w "$W" -r "$R" --save --json)
: >"$OUT/results.jsonl"
for c in ${ONLY//,/ }; do
  case $c in
    nf4) args=("$M7" --method qlora --base nf4) ;;
    'nf4*') [ $PREQ = 1 ] || continue; args=("$PQ" --method qlora --base nf4) ;;
    q8) args=("$M7" --method qlora --base q8) ;;
    bf16) args=("$M7" --method qlora --base bf16) ;;
    *) say "unknown configuration '$c'"; continue ;;
  esac
  say "running $c"
  if "$BENCH" "${args[@]}" "${COMMON[@]}" >"$OUT/$c.json" 2>"$OUT/$c.log"; then
    sed "s/^{/{\"row\": \"$c\", /" "$OUT/$c.json" >>"$OUT/results.jsonl"
  else
    say "$c failed: $(tail -n 2 "$OUT/$c.log")"
  fi
done
# predicted only: what does not fit in this machine's memory
for c in "f32-base:--method qlora --base-dtype f32" "lora-asis:--method lora" "full:--method full --grad-checkpoint"; do
  name=${c%%:*}; opts=${c#*:}
  # shellcheck disable=SC2086
  "$CT" plan "$M7" $opts --r 16 --targets all-linear --max-len 256 --batch 1 --precision bf16 --json \
    | sed "s/^{/{\"row\": \"$name\", \"plan_only\": 1, /" >>"$OUT/results.jsonl"
done

"$PY" - "$OUT/results.jsonl" <<'EOF' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| frozen base | set-up s | step s (best) | tok/s | model GFLOP/s (4N) | peak RSS | predicted | measured/predicted |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r.get("plan_only"):
        continue
    print("| %s | %.1f | %.1f | %.1f | %.0f | %.0f MiB (%.2f GiB) | %.0f MiB | %.3f |" % (
        r["row"], r["setup_s"], r["ms_step_best"] / 1e3, r["tok_s"], r["gflop_s"], r["peak_rss_mib"],
        r["peak_rss_mib"] / 1024, r["predicted_peak_mib"], r["peak_rss_mib"] / r["predicted_peak_mib"]))
print()
print("| predicted only (does not fit here) | method | peak | fits in available |")
print("|---|---|---:|---|")
for r in rows:
    if not r.get("plan_only"):
        continue
    print("| %s | %s (base %s) | %.2f GiB | %s |" % (r["row"], r["method"], r["base"], r["peak_bytes"] / 2**30,
          "yes" if r["peak_bytes"] <= r["available_bytes"] else "no (%.1f GiB available)" % (r["available_bytes"] / 2**30)))
EOF
say "results in $OUT"
