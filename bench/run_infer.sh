#!/usr/bin/env bash
# bench/run_infer.sh — inference speed of ctune next to llama.cpp, one table.
#
# For each model: bench/bench_infer (ctune) and llama.cpp's llama-bench, the
# same prompt length P (one batch), decode length N, threads and repetitions;
# the best repetition of each. Models: the real stories260K (../shared), the
# real SmolLM2-135M-Instruct Q4_1 (scripts/get-models.sh), and RANDOM-weight
# files in real shapes (bench/make_models.py). See docs/bench.md.
#
# Prepares what is missing (idempotent): builds ctune Release in $BUILD_DIR
# (default build-bench/), the llama.cpp peer (scripts/get-llamacpp.sh; the
# first build took ~5 min on 2 quiet cores), the real model, the random models.
#
# Env: CTUNE_CACHE, BUILD_DIR, BENCH_INFER (use this bench_infer binary, build
# nothing), PEAK_GBS (default 70), CTUNE_SHARED (default ../shared).
# Usage: bench/run_infer.sh [--quick] [-p P] [-n N] [-t THREADS] [-r REPS]
#                           [--only REGEX] [--no-llamacpp]
#   --quick       a smaller set (stories260K, SmolLM2 real, stories15M and
#                 stories110M in F32/Q8_0/Q4_0)
#   --only REGEX  only models whose label matches (grep -E)
# Output: the table on stdout; raw results and the table in
#   out/bench-infer-<UTC time>/ (bench_infer JSON, llama-bench JSON, logs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CTUNE_CACHE=${CTUNE_CACHE:-$HOME/.cache/ctune}
export CTUNE_CACHE
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
SHARED=${CTUNE_SHARED:-$ROOT/../shared}
PEAK_GBS=${PEAK_GBS:-70}   # the memory bandwidth the GB/s column is compared with
P=128 N=64 T=2 R=3 quick=0 only= use_llama=1
while [ $# -gt 0 ]; do
  case $1 in
    -p) P=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --no-llamacpp) use_llama=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "run_infer: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "run_infer: $*" >&2; }
if [ -n "${CTUNE_PY:-}" ]; then PY=$CTUNE_PY
elif [ -x "$CTUNE_CACHE/venv/bin/python" ]; then PY=$CTUNE_CACHE/venv/bin/python
else PY=python3; fi

OUT=$ROOT/out/bench-infer-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

# ---- 1. prepare ------------------------------------------------------------
if [ -n "${BENCH_INFER:-}" ]; then
  BENCH=$BENCH_INFER   # a prebuilt bench_infer (e.g. another build type); no build
  [ -x "$BENCH" ] || { say "BENCH_INFER=$BENCH is not an executable"; exit 1; }
else
  say "building ctune (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake.log" 2>&1 \
    || { tail -n 20 "$OUT/cmake.log" >&2; exit 1; }
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_infer >>"$OUT/cmake.log" 2>&1 \
    || { grep -m10 -i error "$OUT/cmake.log" >&2; say "ctune build failed (log: $OUT/cmake.log)"; exit 1; }
  BENCH=$BUILD_DIR/bench_infer
fi

LB=$CTUNE_CACHE/peers/llama.cpp/bin/llama-bench
if [ $use_llama = 1 ]; then
  if ! "$ROOT/scripts/get-llamacpp.sh" >"$OUT/get-llamacpp.log" 2>&1; then
    tail -n 5 "$OUT/get-llamacpp.log" >&2
    say "WARNING: llama.cpp peer unavailable (log: $OUT/get-llamacpp.log); its columns stay empty"
    use_llama=0
  fi
fi
"$ROOT/scripts/get-models.sh" >"$OUT/get-models.log" 2>&1 \
  || say "WARNING: the real SmolLM2 model could not be fetched (log: $OUT/get-models.log)"
"$PY" "$ROOT/bench/make_models.py" --shared "$SHARED" >"$OUT/make-models.log" 2>&1 \
  || { tail -n 5 "$OUT/make-models.log" >&2; say "make_models.py failed"; exit 1; }

# ---- 2. the model list: label|dtype|path -----------------------------------
RND=$CTUNE_CACHE/models/random
models=(
  "stories260K (real)|F32|$SHARED/models/stories260K/stories260K.gguf"
  "SmolLM2-135M-Instruct (real)|Q4_1|$CTUNE_CACHE/models/SmolLM2-135M-Instruct-Q4_1.gguf"
)
if [ $quick = 1 ]; then shapes="stories15M stories110M"
else shapes="stories15M stories42M stories110M smollm2-135M gpt2-124M"; fi
for s in $shapes; do
  for t in F32 Q8_0 Q4_0; do models+=("$s (RANDOM)|$t|$RND/random-$s-$t.gguf"); done
done

# ---- 3. environment ---------------------------------------------------------
{
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg)  (1/5/15 min; > 0.5 means the numbers are noisy)"
  echo "env:       OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>}  OMP_NUM_THREADS=${OMP_NUM_THREADS-<unset>}"
  echo "ctune:     $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'), $BENCH"
  if [ $use_llama = 1 ]; then
    echo "llama.cpp: $(sed -n 's/^commit: //p' "$CTUNE_CACHE/peers/llama.cpp/VERSION") ($(sed -n 's/^from: //p' "$CTUNE_CACHE/peers/llama.cpp/VERSION" | cut -d, -f1))"
  else
    echo "llama.cpp: not run"
  fi
  echo "settings:  pp$P (one batch), tg$N (one token at a time), $T threads, best of $R after a warm-up"
} | tee "$OUT/env.txt"

# ---- 4. run -----------------------------------------------------------------
: >"$OUT/list.tsv"
start=$(date +%s)
for m in "${models[@]}"; do
  IFS='|' read -r label dtype path <<<"$m"
  [ -n "$only" ] && ! grep -qE -- "$only" <<<"$label $dtype" && continue
  key=$(echo "$label-$dtype" | tr -c 'A-Za-z0-9_.-' '_')
  if [ ! -f "$path" ]; then
    say "skip $label $dtype: $path not found"
    continue
  fi
  printf '%s\t%s\t%s\t%s\n' "$label" "$dtype" "$path" "$key" >>"$OUT/list.tsv"
  say "$label $dtype: ctune"
  "$BENCH" "$path" -p "$P" -n "$N" -t "$T" -r "$R" --json >"$OUT/$key.ctune.json" 2>"$OUT/$key.ctune.err" \
    || say "  ctune failed: $(tail -n1 "$OUT/$key.ctune.err")"
  if [ "$dtype" != F32 ]; then  # quantized: also with 8-bit activations, llama.cpp's arithmetic
    say "$label $dtype: ctune --q8-act"
    "$BENCH" "$path" -p "$P" -n "$N" -t "$T" -r "$R" --json --q8-act >"$OUT/$key.ctune-q8.json" 2>"$OUT/$key.ctune-q8.err" \
      || say "  ctune --q8-act failed: $(tail -n1 "$OUT/$key.ctune-q8.err")"
  fi
  if [ $use_llama = 1 ]; then
    say "$label $dtype: llama.cpp"
    "$LB" -m "$path" -p "$P" -n "$N" -t "$T" -r "$R" -o json >"$OUT/$key.llama.json" 2>"$OUT/$key.llama.err" \
      || say "  llama-bench failed: $(grep -m1 -i 'error\|failed' "$OUT/$key.llama.err" || tail -n1 "$OUT/$key.llama.err")"
  fi
done
say "benchmarks took $(( $(date +%s) - start )) s"

# ---- 5. one table -----------------------------------------------------------
"$PY" - "$OUT" "$PEAK_GBS" <<'EOF' | tee "$OUT/table.md"
import json, os, sys
out = sys.argv[1]
peak = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else 70.0

def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def llama_best(runs, want):
    """llama-bench -o json: a list of tests; pp has n_gen 0, tg has n_prompt 0.
    Best repetition = max(samples_ts), to match bench_infer's best."""
    if not runs:
        return None
    for r in runs:
        if (want == "pp" and r.get("n_gen") == 0 and r.get("n_prompt", 0) > 0) or \
           (want == "tg" and r.get("n_prompt") == 0 and r.get("n_gen", 0) > 0):
            s = r.get("samples_ts") or [r.get("avg_ts")]
            return max(s)
    return None

def f(x, fmt="%.1f"):
    return fmt % x if x is not None else "-"

def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"

rows = []
with open(os.path.join(out, "list.tsv")) as fh:
    for line in fh:
        label, dtype, path, key = line.rstrip("\n").split("\t")
        c = load(os.path.join(out, key + ".ctune.json"))
        q = load(os.path.join(out, key + ".ctune-q8.json"))
        l = load(os.path.join(out, key + ".llama.json"))
        wmb = c["weight_bytes_per_token"] / 1e6 if c else None
        cpp, ctg = (c["pp_tok_s"], c["tg_tok_s"]) if c else (None, None)
        lpp, ltg = llama_best(l, "pp"), llama_best(l, "tg")
        qpp, qtg = (q["pp_tok_s"], q["tg_tok_s"]) if q else (None, None)
        gbs = c["tg_gb_s"] if c else None
        rows.append([label, dtype, f(wmb), f(cpp), f(qpp), f(lpp), ratio(cpp, lpp), ratio(qpp, lpp),
                     f(ctg), f(qtg), f(ltg), ratio(ctg, ltg), ratio(qtg, ltg),
                     (f(gbs, "%.2f") + " (%.0f%%)" % (100 * gbs / peak)) if gbs else "-"])

head = ["model", "dtype", "weight MB", "ctune pp", "ctune q8 pp", "llama.cpp pp", "ratio", "q8 ratio",
        "ctune tg", "ctune q8 tg", "llama.cpp tg", "ratio", "q8 ratio", "tg GB/s (ctune, %% of %.0f)" % peak]
w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
def line(r):
    return "| " + " | ".join(str(x).rjust(w[i]) if i > 1 else str(x).ljust(w[i]) for i, x in enumerate(r)) + " |"
print(line(head))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(line(r))
print()
print("tok/s; ctune: exact f32 activations (the default); ctune q8: --q8-act, activations quantized to 8 bits")
print("for Q8_0/Q4_0/Q4_1 matrices as llama.cpp does; weight MB: weight bytes read per decoded token")
print("(ct_model_weight_bytes); ratio = ctune / llama.cpp, q8 ratio = ctune q8 / llama.cpp;")
print("(RANDOM) = random weights in the real model's shape (bench/make_models.py); '-' = failed or not run.")
EOF
say "results in $OUT"
