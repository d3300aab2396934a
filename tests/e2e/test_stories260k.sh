#!/usr/bin/env bash
# stories260K (a real pretrained Llama-architecture model) against an
# independent NumPy forward (tests/golden/ref_stories.py):
#   - `ctune generate --temp 0` prints exactly the bytes of NumPy's greedy
#     continuation of "Once upon a time" (from the .bin and from the .gguf);
#   - `ctune eval` perplexity on tinystories-sample.txt (ctx 256, stride 128)
#     equals NumPy's within 1e-3 relative;
#   - test_model_stories checks the same at the API level (exact token ids,
#     perplexity within 1e-4) and .bin vs .gguf logits.
source "$(dirname "$0")/common.sh"
need_python
M=$CTUNE_SHARED/models/stories260K
DATA=$CTUNE_SHARED/data/text/tinystories-sample.txt
for f in "$M/stories260K.bin" "$M/tok512.bin" "$M/stories260K.gguf" "$DATA"; do
  [ -f "$f" ] || { echo "SKIP: $f not found"; exit 77; }
done
N=200 CTX=256 STRIDE=128 PPL_RTOL=1e-3
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1  # small matrices: threads only contend

if ! "$PY" "$CTUNE_ROOT/tests/golden/ref_stories.py" "$M/stories260K.bin" "$M/tok512.bin" "$DATA" "$TMP/ref" \
     -n $N --ctx $CTX --stride $STRIDE >"$TMP/ref.log" 2>&1; then
  fail "ref_stories.py failed: $(tail -5 "$TMP/ref.log")"; finish; exit 1
fi
cat "$TMP/ref.log"

# --- greedy text, byte-exact --------------------------------------------------
gen_check() {  # label, model args...
  local label=$1; shift
  if ! "$CTUNE" generate "$@" -p "Once upon a time" -n $N --temp 0 -t 2 >"$TMP/gen.txt" 2>"$TMP/gen.err"; then
    fail "$label: ctune generate failed: $(cat "$TMP/gen.err")"; return
  fi
  if cmp -s "$TMP/gen.txt" "$TMP/ref/gen_text.bin"; then
    pass; echo "ok   $label: greedy $N tokens byte-identical to NumPy"
  else
    fail "$label: greedy text differs from NumPy at byte $(cmp "$TMP/gen.txt" "$TMP/ref/gen_text.bin" | awk '{print $5}')"
    echo "--- ctune:"; head -c 400 "$TMP/gen.txt"; echo; echo "--- numpy:"; head -c 400 "$TMP/ref/gen_text.bin"; echo
  fi
}
gen_check stories260K.bin "$M/stories260K.bin" --tokenizer "$M/tok512.bin"
gen_check stories260K.gguf "$M/stories260K.gguf"

# --- perplexity -------------------------------------------------------------------
read -r REF_PPL _ <"$TMP/ref/ppl.txt"
ppl_check() {  # label, model args...
  local label=$1; shift
  if ! "$CTUNE" eval "$@" --data "$DATA" --ctx $CTX --stride $STRIDE -t 2 >"$TMP/eval.txt" 2>"$TMP/eval.err"; then
    fail "$label: ctune eval failed: $(cat "$TMP/eval.err")"; return
  fi
  local got; got=$(sed -n 's/^perplexity: *//p' "$TMP/eval.txt")
  if awk -v a="$got" -v b="$REF_PPL" -v t=$PPL_RTOL 'BEGIN { d = a / b - 1; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; then
    pass; echo "ok   $label: perplexity $got vs NumPy $REF_PPL ($(cat "$TMP/eval.err"))"
  else
    fail "$label: perplexity '$got' vs NumPy $REF_PPL (rtol $PPL_RTOL)"
  fi
}
ppl_check stories260K.bin "$M/stories260K.bin" --tokenizer "$M/tok512.bin"
ppl_check stories260K.gguf "$M/stories260K.gguf"

# --- the API-level comparison (token ids, ppl within 1e-4, .bin vs .gguf) -----------
if [ -x "$CTUNE_BUILD/test_model_stories" ]; then
  if CTUNE_STORIES_REF_DIR="$TMP/ref" "$CTUNE_BUILD/test_model_stories"; then pass
  else fail "test_model_stories against the NumPy reference"; fi
else
  fail "$CTUNE_BUILD/test_model_stories not built"
fi
finish
