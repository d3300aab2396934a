#!/usr/bin/env bash
# Prompt tuning vs PEFT both ways: tests/golden/gen_prompt_refs.py writes tiny
# Llama / GPT-2 checkpoints, PEFT PROMPT_TUNING adapters and the reference loss
# and gradient; test_prompt_ref loads PEFT's adapters and compares, then saves
# its own; PEFT loads those and gives ctune's logits (--check).
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_prompt_ref
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_prompt_refs.py" "$TMP/ref" >"$TMP/gen.log" 2>&1; then
  fail "gen_prompt_refs.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
mkdir -p "$TMP/out"
if CTUNE_PROMPT_REF_DIR="$TMP/ref" CTUNE_PROMPT_OUT_DIR="$TMP/out" "$BIN"; then pass
else fail "prompt tuning differs from PEFT (see above)"; fi
if "$PY" "$CTUNE_ROOT/tests/golden/gen_prompt_refs.py" --check "$TMP/ref" "$TMP/out" 2>"$TMP/check.log"; then pass
else fail "PEFT does not reproduce ctune's prompt adapter: $(tail -3 "$TMP/check.log")"; fi
finish
