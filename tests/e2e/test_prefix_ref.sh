#!/usr/bin/env bash
# Prefix tuning vs PEFT both ways: tests/golden/gen_prefix_refs.py writes tiny
# Llama / GPT-2 checkpoints, PEFT PREFIX_TUNING adapters (plain and with the
# projection MLP) and the reference loss and gradients; test_prefix_ref loads
# PEFT's adapters and compares, then saves its own (also on the real
# stories260K, exported as an HF directory); PEFT loads those and gives
# ctune's logits (--check).
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_prefix_ref
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_prefix_refs.py" "$TMP/ref" >"$TMP/gen.log" 2>&1; then
  fail "gen_prefix_refs.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
mkdir -p "$TMP/out"
if CTUNE_PREFIX_REF_DIR="$TMP/ref" CTUNE_PREFIX_OUT_DIR="$TMP/out" "$BIN"; then pass
else fail "prefix tuning differs from PEFT (see above)"; fi
if "$PY" "$CTUNE_ROOT/tests/golden/gen_prefix_refs.py" --check "$TMP/ref" "$TMP/out" 2>"$TMP/check.log"; then pass
else fail "PEFT does not reproduce ctune's prefix adapter: $(tail -3 "$TMP/check.log")"; fi
finish
