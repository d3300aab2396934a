#!/usr/bin/env bash
# The frozen-base classifier vs transformers' *ForSequenceClassification:
# tests/golden/gen_cls_refs.py writes tiny Llama / GPT-2 checkpoints and the
# reference features, logits, loss and score.weight gradient, and a PEFT
# SEQ_CLS LoRA + head adapter with its loss and gradients; test_cls_ref
# compares ctune's, and PEFT loads ctune's LoRA + head adapter (--check).
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_cls_ref
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_cls_refs.py" "$TMP/ref" >"$TMP/gen.log" 2>&1; then
  fail "gen_cls_refs.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
mkdir -p "$TMP/out"
if CTUNE_CLS_REF_DIR="$TMP/ref" CTUNE_CLS_OUT_DIR="$TMP/out" "$BIN"; then pass
else fail "the classifier differs from transformers (see above)"; fi
if "$PY" "$CTUNE_ROOT/tests/golden/gen_cls_refs.py" --check "$TMP/ref" "$TMP/out" 2>"$TMP/check.log"; then pass
else fail "PEFT does not reproduce ctune's LoRA + head adapter: $(tail -3 "$TMP/check.log")"; fi
finish
