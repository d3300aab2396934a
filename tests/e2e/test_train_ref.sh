#!/usr/bin/env bash
# The trainer vs PyTorch + transformers + PEFT: tests/golden/gen_train_refs.py
# writes tiny random-weight checkpoints, a packed batch, PEFT adapters, and the
# reference losses, gradients and ten-step AdamW trajectories; test_train_ref
# compares ctune's (full fine-tuning, LoRA, rsLoRA, checkpointing); then
# check_ctune_outputs.py loads ctune's saved adapter / model in PEFT /
# transformers and compares their logits with ctune's.
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_train_ref
if [ ! -x "$BIN" ]; then
  echo "FAIL: $BIN not built"; exit 1
fi
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_train_refs.py" "$TMP/ref" >"$TMP/gen.log" 2>&1; then
  fail "gen_train_refs.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
mkdir -p "$TMP/out"
if CTUNE_TRAIN_REF_DIR="$TMP/ref" CTUNE_TRAIN_OUT_DIR="$TMP/out" "$BIN"; then pass
else fail "training differs from PyTorch/PEFT (see above)"; fi
# the other direction: PEFT / transformers load what ctune trained and saved
if "$PY" "$CTUNE_ROOT/tests/golden/check_ctune_outputs.py" "$TMP/ref" "$TMP/out"; then pass
else fail "PEFT/transformers do not reproduce ctune's trained adapter/model"; fi
finish
