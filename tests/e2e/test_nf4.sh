#!/usr/bin/env bash
# NF4/FP4 quantization vs bitsandbytes: tests/golden/gen_nf4_refs.py runs
# bitsandbytes' own quantize_4bit / double quantization / dequantize_4bit (CPU
# path) on a few matrices; test_nf4 must reproduce codes, absmax, nested
# state, maps, the quant-state JSON and the dequantized values bit for bit.
source "$(dirname "$0")/common.sh"
need_python
if ! "$PY" -c "import bitsandbytes" 2>/dev/null; then
  echo "SKIP: bitsandbytes is not installed in $PY (pip install bitsandbytes)"
  exit 77
fi
BIN=$CTUNE_BUILD/test_nf4
if [ ! -x "$BIN" ]; then
  echo "FAIL: $BIN not built"; exit 1
fi
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_nf4_refs.py" "$TMP/ref" >"$TMP/gen.log" 2>&1; then
  fail "gen_nf4_refs.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
grep -e 'rms err' "$TMP/gen.log" || true
if CTUNE_NF4_REF_DIR="$TMP/ref" "$BIN"; then pass; else fail "ctune's NF4 differs from bitsandbytes (see above)"; fi
finish
