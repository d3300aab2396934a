#!/usr/bin/env bash
# Forward pass vs Hugging Face transformers: tests/golden/gen_hf_tiny.py writes
# tiny random-weight checkpoints (Llama untied/tied, Qwen2, Mistral with a
# sliding window, GPT-2; bf16, f16 and sharded variants) and their float32
# reference logits; test_model_hf compares ctune's logits (batched, through
# the KV cache, in chunks, after a cache truncation) within named tolerances.
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_model_hf
if [ ! -x "$BIN" ]; then
  echo "FAIL: $BIN not built"; exit 1
fi
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_hf_tiny.py" "$TMP/ref" >"$TMP/gen.log" 2>&1; then
  fail "gen_hf_tiny.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
grep -v -e '^Writing' -e '^Loading' "$TMP/gen.log" | tr '\r' '\n' | grep params || true
if CTUNE_HF_REF_DIR="$TMP/ref" "$BIN"; then pass; else fail "logits differ from transformers (see above)"; fi
# the same checkpoints through the CLI: info must report the config's shapes
if "$CTUNE" info "$TMP/ref/llama_sharded" >"$TMP/info" 2>&1 && grep -q "layers: *3" "$TMP/info"; then pass
else fail "ctune info on the sharded checkpoint: $(cat "$TMP/info")"; fi
finish
