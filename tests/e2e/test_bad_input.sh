#!/usr/bin/env bash
# Corrupt and truncated model files: `ctune info` must exit 1 (not crash: no
# signal, no sanitizer report) with a single error line that names the file and
# the field or tensor at fault.
source "$(dirname "$0")/common.sh"

# expect_error CASE_NAME EXPECTED_SUBSTRING CMD...
expect_error() {
  local name=$1 want=$2; shift 2
  local rc=0
  "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  local lines; lines=$(grep -c . "$TMP/err" || true)
  if [ "$rc" -ne 1 ]; then
    fail "$name: exit code $rc (want 1): $(head -c 400 "$TMP/err")"
  elif [ "$lines" -ne 1 ]; then
    fail "$name: $lines lines on stderr (want 1): $(head -c 400 "$TMP/err")"
  elif ! grep -qF -- "$want" "$TMP/err"; then
    fail "$name: message does not mention '$want': $(cat "$TMP/err")"
  else
    pass; echo "ok   $name: $(cat "$TMP/err")"
  fi
}

M=$CTUNE_SHARED/models/stories260K
# --- GGUF -------------------------------------------------------------------
g=$M/stories260K.gguf
size=$(stat -c %s "$g")
head -c 100 "$g" >"$TMP/trunc-header.gguf";   expect_error gguf_truncated_header trunc-header.gguf "$CTUNE" info "$TMP/trunc-header.gguf"
head -c $((size / 2)) "$g" >"$TMP/trunc-half.gguf"; expect_error gguf_truncated_data trunc-half.gguf "$CTUNE" info "$TMP/trunc-half.gguf"
{ printf 'GGUX'; tail -c +5 "$g"; } >"$TMP/badmagic.gguf"; expect_error gguf_bad_magic badmagic.gguf "$CTUNE" info "$TMP/badmagic.gguf"
{ head -c 4 "$g"; printf '\x01\x00\x00\x00'; tail -c +9 "$g"; } >"$TMP/v1.gguf"; expect_error gguf_version v1.gguf "$CTUNE" info "$TMP/v1.gguf"
# tensor count field (bytes 8..15) set huge
{ head -c 8 "$g"; printf '\xff\xff\xff\xff\xff\xff\xff\x0f'; tail -c +17 "$g"; } >"$TMP/ntensors.gguf"; expect_error gguf_tensor_count ntensors.gguf "$CTUNE" info "$TMP/ntensors.gguf"
: >"$TMP/empty.gguf"; expect_error gguf_empty empty.gguf "$CTUNE" info "$TMP/empty.gguf"

# --- llama2.c ----------------------------------------------------------------
b=$M/stories260K.bin
head -c 5000 "$b" >"$TMP/trunc.bin"; expect_error llama2c_truncated trunc.bin "$CTUNE" info "$TMP/trunc.bin" --tokenizer "$M/tok512.bin"
{ printf '\x00\x00\x00\x00'; tail -c +5 "$b"; } >"$TMP/zerodim.bin"; expect_error llama2c_bad_header zerodim.bin "$CTUNE" info "$TMP/zerodim.bin" --tokenizer "$M/tok512.bin"
expect_error llama2c_no_tokenizer tokenizer "$CTUNE" info "$b"
head -c 300 "$M/tok512.bin" >"$TMP/tok.bin"; expect_error tokenizer_bin_truncated tok.bin "$CTUNE" info "$b" --tokenizer "$TMP/tok.bin"
expect_error missing_file nonexistent "$CTUNE" info "$TMP/nonexistent.gguf"

# --- Hugging Face directories (made by the reference safetensors writer) ----
if [ -x "$PY" ]; then
  "$PY" "$CTUNE_ROOT/tests/golden/make_bad_inputs.py" "$TMP/hf" >/dev/null
  while IFS=$'\t' read -r name want; do
    if [ "$name" = valid ]; then
      if "$CTUNE" info "$TMP/hf/valid" >"$TMP/out" 2>"$TMP/err"; then pass; echo "ok   valid HF directory loads"
      else fail "valid HF directory: $(cat "$TMP/err")"; fi
      continue
    fi
    expect_error "hf_$name" "$want" "$CTUNE" info "$TMP/hf/$name"
  done <"$TMP/hf/cases.tsv"
else
  echo "note: HF directory cases skipped: Python reference stack missing at $PY (run scripts/setup.sh)"
fi
finish
