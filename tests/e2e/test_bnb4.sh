#!/usr/bin/env bash
# Hugging Face bitsandbytes 4-bit checkpoints against transformers 5.x +
# bitsandbytes 0.50.2 (CPU): tests/golden/gen_bnb4_refs.py makes tiny random
# Llama and GPT-2 models, quantized and saved by transformers (NF4 + double
# quant, FP4 without), a LoRA adapter, and transformers' logits. Then:
#  (a) test_bnb4: ctune loads transformers' 4-bit dirs, logits within 1e-5;
#  (b) `ctune quantize` of the f32 models: every tensor (codes, absmax,
#      nested, maps, quant-state JSON) byte-identical to transformers' file;
#  (c) transformers loads ctune's dirs: the same logits as from its own;
#  (d) `ctune merge` of an adapter over the NF4 dirs (Llama q/v/down,
#      GPT-2 c_attn/c_fc) = dequantized base + LoRA merged in torch (f32
#      tolerance);
# plus refusals: a full disk (ulimit -f) leaves no output directory, an
# existing output, an already 4-bit source.
source "$(dirname "$0")/common.sh"
need_python
if ! "$PY" -c "import bitsandbytes, peft" 2>/dev/null; then
  echo "SKIP: bitsandbytes / peft are not installed in $PY"
  exit 77
fi
R=$TMP/r
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_bnb4_refs.py" gen "$R" >"$TMP/gen.log" 2>&1; then
  fail "gen_bnb4_refs.py gen failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
grep "default CPU path" "$TMP/gen.log" || true
# (a)
if CTUNE_BNB4_REF_DIR=$R "$CTUNE_BUILD/test_bnb4"; then pass; else fail "test_bnb4 (loading transformers' 4-bit dirs)"; fi
if "$CTUNE" info "$R/llama_nf4_dq" 2>&1 | grep -q "NF4: 14 (bitsandbytes 4-bit)"; then pass
else fail "ctune info does not count the NF4 weights: $("$CTUNE" info "$R/llama_nf4_dq" 2>&1 | grep dtypes)"; fi
# (b), (c), (d)
q() { "$CTUNE" quantize "$R/$1" -o "$R/ctune_$2" "${@:3}" >"$TMP/q.log" 2>&1 || fail "ctune quantize $2: $(cat "$TMP/q.log")"; }
q llama_f32 llama_nf4_dq
q llama_f32 llama_fp4 --type fp4 --no-double-quant
q gpt2_f32 gpt2_nf4_dq -t 2
q gpt2_f32 gpt2_fp4 --type fp4 --no-double-quant
if "$CTUNE" merge "$R/llama_nf4_dq" --adapter "$R/lora" -o "$R/merged" >"$TMP/m.log" 2>&1 &&
   grep -q "merged into the dequantized base in f32" "$TMP/m.log" && grep -q "NOT re-quantized" "$TMP/m.log"; then pass
else fail "ctune merge: $(cat "$TMP/m.log")"; fi
if "$CTUNE" merge "$R/gpt2_nf4_dq" --adapter "$R/lora_gpt2" -o "$R/merged_gpt2" >"$TMP/m.log" 2>&1; then pass
else fail "ctune merge (GPT-2): $(cat "$TMP/m.log")"; fi
if "$PY" "$CTUNE_ROOT/tests/golden/gen_bnb4_refs.py" check "$R" >"$TMP/check.log" 2>&1; then pass
else fail "gen_bnb4_refs.py check: $(grep -v -e Loading -e Writing -e kernels "$TMP/check.log" | tail -8)"; fi
grep -e "tensors," -e "^merged" "$TMP/check.log" || true
# merge in bf16: loads, stored BF16
if "$CTUNE" merge "$R/llama_nf4_dq" --adapter "$R/lora" -o "$R/merged16" --dtype bf16 >/dev/null 2>&1 &&
   "$CTUNE" info "$R/merged16" 2>&1 | grep -q "dtypes: *BF16"; then pass
else fail "ctune merge --dtype bf16: $("$CTUNE" info "$R/merged16" 2>&1 | tail -3)"; fi
# a GGUF source (stories260K: NORM rope, q/k rows permuted back to HF's
# layout; tokenizer exported): transformers' greedy text from ctune's 4-bit
# dir equals ctune's
G=$CTUNE_SHARED/models/stories260K/stories260K.gguf
if [ -f "$G" ]; then
  if "$CTUNE" quantize "$G" -o "$TMP/s260" >"$TMP/g.log" 2>&1; then
    ours=$("$CTUNE" generate "$TMP/s260" -p "Once upon a time" -n 40 2>/dev/null)
    theirs=$("$PY" "$CTUNE_ROOT/tests/golden/gen_bnb4_refs.py" generate "$TMP/s260" "Once upon a time" 40 2>/dev/null)
    if [ -n "$ours" ] && [ "$ours" = "$theirs" ]; then pass
    else fail "stories260K 4-bit greedy text: ctune '$ours' vs transformers '$theirs'"; fi
  else fail "ctune quantize $G: $(cat "$TMP/g.log")"; fi
else echo "note: $G missing, GGUF source not checked"; fi
# a full disk: the write fails, nothing that looks like an output is left
if (ulimit -f 64; "$CTUNE" quantize "$R/llama_f32" -o "$TMP/full") >"$TMP/full.log" 2>&1; then
  fail "quantize under ulimit -f 64 succeeded"
elif ! grep -q "File too large" "$TMP/full.log" || [ -e "$TMP/full" ] || ls -d "$TMP"/full.tmp.* >/dev/null 2>&1; then
  fail "full disk: $(cat "$TMP/full.log"); left: $(ls "$TMP")"
else pass; fi
if "$CTUNE" quantize "$R/llama_f32" -o "$R/llama_nf4_dq" >"$TMP/e.log" 2>&1 || ! grep -q "already exists" "$TMP/e.log"; then
  fail "quantize over an existing directory: $(cat "$TMP/e.log")"; else pass; fi
if "$CTUNE" quantize "$R/llama_nf4_dq" -o "$TMP/again" >"$TMP/e.log" 2>&1 || ! grep -q "already quantized" "$TMP/e.log"; then
  fail "quantize of a 4-bit model: $(cat "$TMP/e.log")"; else pass; fi
finish
