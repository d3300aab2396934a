#!/usr/bin/env bash
# The trainer vs PyTorch + transformers + PEFT: tests/golden/gen_train_refs.py
# writes tiny random-weight checkpoints, a packed batch, PEFT adapters, and the
# reference losses, gradients and ten-step AdamW trajectories; test_train_ref
# compares ctune's (full fine-tuning, LoRA, rsLoRA, checkpointing).
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
if CTUNE_TRAIN_REF_DIR="$TMP/ref" "$BIN"; then pass; else fail "training differs from PyTorch/PEFT (see above)"; fi
finish
