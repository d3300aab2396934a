#!/usr/bin/env bash
# bench/run_train.sh — training speed of ctune next to PyTorch (transformers +
# PEFT), one table.
#
# For each model shape x method (full, LoRA r=8 on q,v; GPT-2: c_attn) x
# sequence length T, with B sequences per step: bench/bench_train (ctune, f32
# and --bf16) and bench/train_peer.py (PyTorch f32, and bf16 autocast), each
# configuration in its own process (peak RSS is per process), the same batch,
# warm-up steps and timed steps. Models: RANDOM-weight GGUF files in real
# shapes (bench/make_models.py; PyTorch builds the same shapes from configs).
# See docs/bench.md "Training".
#
# Prepares what is missing (idempotent): builds ctune Release in $BUILD_DIR
# (default build-bench/) and the random models.
#
# Env: CTUNE_CACHE, BUILD_DIR, BENCH_TRAIN (use this bench_train binary, build
# nothing), CTUNE_PY (python with torch/transformers/peft), CTUNE_SHARED.
# Usage: bench/run_train.sh [--quick] [--only REGEX] [-r REPS] [-w WARMUP]
#                           [-t THREADS] [-b B] [--no-peer] [--no-bf16] [--qlora]
#   --quick       T=256 only, 1 warm-up + 2 timed steps
#   --only REGEX  only rows whose "model method T" matches (grep -E),
#                 e.g. --only 'gpt2.*256'
#   -r / -w       timed / warm-up steps per configuration (default 5 / 2)
#   --no-peer     ctune only;  --no-bf16  f32 only (both sides)
#   --qlora       also QLoRA rows (method "qlora"): ctune --method qlora --base nf4
#                 --targets all --checkpointing beside train_peer.py --method qlora
#                 --targets all (bitsandbytes NF4 + double quant, PEFT, gradient
#                 checkpointing), r=8 on every linear layer of the blocks; the table
#                 then has ctune's predicted peak (ctune plan) beside its measured one
# Output: the table on stdout; raw JSON lines, logs and the table in
#   out/bench-train-<UTC time>/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CTUNE_CACHE=${CTUNE_CACHE:-$HOME/.cache/ctune}
export CTUNE_CACHE
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
SHARED=${CTUNE_SHARED:-$ROOT/../shared}
B=4 R=5 W=2 TH=2 quick=0 only= peer=1 bf16=1 qlora=0
while [ $# -gt 0 ]; do
  case $1 in
    -r) R=$2; shift 2 ;;
    -w) W=$2; shift 2 ;;
    -t) TH=$2; shift 2 ;;
    -b) B=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --no-peer) peer=0; shift ;;
    --no-bf16) bf16=0; shift ;;
    --qlora) qlora=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run_train: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ $quick = 1 ]; then TS="256"; R=2; W=1; else TS="64 256"; fi

say() { echo "run_train: $*" >&2; }
if [ -n "${CTUNE_PY:-}" ]; then PY=$CTUNE_PY
elif [ -x "$CTUNE_CACHE/venv/bin/python" ]; then PY=$CTUNE_CACHE/venv/bin/python
else PY=python3; fi
# PyTorch's GEMMs are oneMKL/oneDNN, but a stray OPENBLAS_CORETYPE=Haswell
# would still say the environment was tuned down: run every side without it.
unset OPENBLAS_CORETYPE

OUT=$ROOT/out/bench-train-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

# ---- 1. prepare ------------------------------------------------------------
if [ -n "${BENCH_TRAIN:-}" ]; then
  BENCH=$BENCH_TRAIN
  [ -x "$BENCH" ] || { say "BENCH_TRAIN=$BENCH is not an executable"; exit 1; }
else
  say "building ctune (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake.log" 2>&1 \
    || { tail -n 20 "$OUT/cmake.log" >&2; exit 1; }
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_train >>"$OUT/cmake.log" 2>&1 \
    || { grep -m10 -i error "$OUT/cmake.log" >&2; say "ctune build failed (log: $OUT/cmake.log)"; exit 1; }
  BENCH=$BUILD_DIR/bench_train
fi
shapes="gpt2-124M stories15M stories110M"
"$PY" "$ROOT/bench/make_models.py" --shared "$SHARED" --shapes "${shapes// /,}" --types F32 \
  >"$OUT/make-models.log" 2>&1 || { tail -n 5 "$OUT/make-models.log" >&2; say "make_models.py failed"; exit 1; }
if [ $peer = 1 ] && ! "$PY" -c "import torch, transformers, peft" 2>"$OUT/peer-import.log"; then
  tail -n 3 "$OUT/peer-import.log" >&2
  say "WARNING: $PY lacks torch/transformers/peft (scripts/setup.sh); the PyTorch columns stay empty"
  peer=0
fi
peer_qlora=$peer
if [ $qlora = 1 ] && [ $peer = 1 ] && ! "$PY" -c "import bitsandbytes, accelerate" 2>"$OUT/peer-import-bnb.log"; then
  tail -n 3 "$OUT/peer-import-bnb.log" >&2
  say "WARNING: $PY lacks bitsandbytes/accelerate (scripts/setup.sh); the PyTorch qlora columns stay empty"
  peer_qlora=0
fi

# ---- 2. environment ---------------------------------------------------------
{
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) at the start  (1/5/15 min; > 0.5 means the numbers are noisy)"
  echo "ctune:     $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'), $BENCH"
  if [ $peer = 1 ]; then
    echo "pytorch:   $("$PY" -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' 2>/dev/null | tail -n1)"
  else
    echo "pytorch:   not run"
  fi
  if [ $qlora = 1 ] && [ $peer_qlora = 1 ]; then
    echo "qlora:     ctune nf4 base; PyTorch $("$PY" -c 'import bitsandbytes; print("bitsandbytes", bitsandbytes.__version__)' 2>/dev/null | tail -n1)"
  fi
  echo "settings:  B=$B, T in {$TS}, $TH threads, $W warm-up + $R timed optimizer steps per configuration"
} | tee "$OUT/env.txt"

# ---- 3. run -----------------------------------------------------------------
RND=$CTUNE_CACHE/models/random
: >"$OUT/results.jsonl"
: >"$OUT/load.txt"
start=$(date +%s)
# run KEY CMD...: one configuration, its JSON line appended to results.jsonl
run() {
  local key=$1; shift
  echo "$key $(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/load.txt"
  if "$@" >"$OUT/$key.json" 2>"$OUT/$key.err"; then
    cat "$OUT/$key.json" >>"$OUT/results.jsonl"
  else
    say "  $key failed: $(grep -v Warning "$OUT/$key.err" | tail -n1)"
  fi
}
meths="full lora"
[ $qlora = 1 ] && meths="full lora qlora"
for s in $shapes; do
  for meth in $meths; do
    # qlora: the 4-bit base, LoRA on every linear layer of the blocks, gradient checkpointing (both sides)
    copt=() popt=() doit=$peer
    if [ $meth = qlora ]; then
      copt=(--base nf4 --targets all --checkpointing) popt=(--targets all) doit=$peer_qlora
    fi
    for T in $TS; do
      label="$s $meth $T"
      [ -n "$only" ] && ! grep -qE -- "$only" <<<"$label" && continue
      path=$RND/random-$s-F32.gguf
      key=$(printf '%s' "$s-$meth-T$T" | tr -c 'A-Za-z0-9_.-' '_')
      say "$label: ctune f32"
      run "$key.ctune-f32" "$BENCH" "$path" --method $meth ${copt[@]+"${copt[@]}"} -b "$B" -T "$T" -t "$TH" \
        -w "$W" -r "$R" --json
      if [ $bf16 = 1 ]; then
        say "$label: ctune bf16"
        run "$key.ctune-bf16" "$BENCH" "$path" --method $meth ${copt[@]+"${copt[@]}"} -b "$B" -T "$T" -t "$TH" \
          -w "$W" -r "$R" --bf16 --json
      fi
      if [ $doit = 1 ]; then
        say "$label: pytorch f32"
        run "$key.torch-f32" "$PY" "$ROOT/bench/train_peer.py" --shape "$s" --method $meth ${popt[@]+"${popt[@]}"} \
          -b "$B" -T "$T" -t "$TH" -w "$W" -r "$R"
        if [ $bf16 = 1 ]; then
          say "$label: pytorch bf16 autocast"
          run "$key.torch-bf16" "$PY" "$ROOT/bench/train_peer.py" --shape "$s" --method $meth ${popt[@]+"${popt[@]}"} \
            -b "$B" -T "$T" -t "$TH" -w "$W" -r "$R" --bf16
        fi
      fi
    done
  done
done
echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) at the end" | tee -a "$OUT/env.txt" >&2
say "benchmarks took $(( $(date +%s) - start )) s"

# ---- 4. one table -----------------------------------------------------------
"$PY" - "$OUT" "$qlora" <<'EOF' | tee "$OUT/table.md"
import json, os, re, sys
out = sys.argv[1]
qlora = sys.argv[2] == "1"  # adds ctune's predicted peak column
res = {}
with open(os.path.join(out, "results.jsonl")) as fh:
    for line in fh:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        m = re.sub(r"^random-|-F32\.gguf$", "", r["model"])
        prec = "bf16" if r["precision"].startswith("bf16") else "f32"
        res[(m, r["method"], r["T"], r["side"], prec)] = r

def g(k, f):
    r = res.get(k)
    return r[f] if r else None

def f(x, fmt="%.0f"):
    return fmt % x if x is not None else "-"

def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"

order = {"gpt2-124M": 0, "stories15M": 1, "stories110M": 2}
keys = sorted({k[:3] for k in res}, key=lambda k: (order.get(k[0], 9), k[0], k[1], k[2]))
rows = []
for m, meth, T in keys:
    c32, c16 = g((m, meth, T, "ctune", "f32"), "tok_s"), g((m, meth, T, "ctune", "bf16"), "tok_s")
    p32, p16 = g((m, meth, T, "pytorch", "f32"), "tok_s"), g((m, meth, T, "pytorch", "bf16"), "tok_s")
    tr = g((m, meth, T, "ctune", "f32"), "trainable") or g((m, meth, T, "pytorch", "f32"), "trainable")
    crss, prss = g((m, meth, T, "ctune", "f32"), "peak_rss_mib"), g((m, meth, T, "pytorch", "f32"), "peak_rss_mib")
    pk32, pk16 = g((m, meth, T, "ctune", "f32"), "pct_peak"), g((m, meth, T, "ctune", "bf16"), "pct_peak")
    pp32 = g((m, meth, T, "pytorch", "f32"), "pct_peak")
    best_c = max([x for x in (c32, c16) if x] or [0]) or None
    best_p = max([x for x in (p32, p16) if x] or [0]) or None
    row = [m, meth, str(T), f(tr / 1e6 if tr else None, "%.3f"), f(c32), f(c16), f(p32), f(p16),
           ratio(c32, p32), ratio(best_c, best_p), f(crss), f(prss), ratio(prss, crss),
           f(pk32, "%.0f%%"), f(pk16, "%.0f%%"), f(pp32, "%.0f%%")]
    if qlora:
        row.insert(11, f(g((m, meth, T, "ctune", "f32"), "predicted_peak_mib")))
    rows.append(row)
head = ["model", "method", "T", "trainable M", "ctune f32", "ctune bf16", "PyTorch f32", "PyTorch bf16",
        "f32 ratio", "best ratio", "ctune RSS MiB", "PyTorch RSS MiB", "RSS PyT/ctune",
        "ctune f32 %peak", "ctune bf16 %peak", "PyTorch f32 %peak"]
if qlora:
    head.insert(11, "ctune pred MiB")
w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
def line(r):
    return "| " + " | ".join(str(x).ljust(w[i]) if i < 2 else str(x).rjust(w[i]) for i, x in enumerate(r)) + " |"
print(line(head))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(line(r))
print()
print("tok/s = B*T*steps / time of the timed optimizer steps (zero grad, forward, backward, clip, AdamW);")
print("f32 ratio = ctune f32 / PyTorch f32; best ratio = the faster ctune precision / the faster PyTorch one;")
print("RSS = peak resident set of the f32 run's process (VmHWM); %peak = 6N (full) or 4N (LoRA) FLOPs per token")
print("x tok/s over 234 GFLOP/s (f32) or 820 (bf16), N = all parameters incl. embeddings, attention not counted;")
print("models: RANDOM weights in the real shapes (bench/make_models.py); '-' = failed or not run.")
if qlora:
    print("qlora: r=8 on every linear layer of the blocks, gradient checkpointing; ctune --base nf4 (NF4, double")
    print("quant, bitsandbytes' format) vs transformers BitsAndBytesConfig(nf4, double quant) + PEFT")
    print("prepare_model_for_kbit_training (bf16: compute dtype bf16 + autocast); ctune pred MiB = ctune plan's")
    print("predicted peak for the f32 run, beside its measured RSS.")
bar = {("lora", 900), ("full", 600)}
for meth, need in sorted(bar):
    k = ("gpt2-124M", meth, 256)
    c = [x for x in (g(k + ("ctune", "f32"), "tok_s"), g(k + ("ctune", "bf16"), "tok_s")) if x]
    if c:
        print("bar: GPT-2 124M %s B=4 T=256 >= %d tok/s: ctune %.0f -> %s" % (meth, need, max(c),
              "MET" if max(c) >= need else "not met"))
EOF
say "results in $OUT"
