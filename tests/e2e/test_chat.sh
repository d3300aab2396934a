#!/usr/bin/env bash
# Chat templates vs Hugging Face transformers: tests/golden/gen_chat_refs.py
# renders conversations with apply_chat_template (the SmolLM2 GGUF's own
# template, and the published templates of Qwen2/ChatML, Llama-2, Mistral,
# Llama-3, Zephyr); test_chat_hf renders them with ctune and compares byte
# for byte. Without the GGUF (scripts/get-models.sh) its cases are left out.
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_chat_hf
if [ ! -x "$BIN" ]; then
  echo "FAIL: $BIN not built"; exit 1
fi
GGUF=$CTUNE_CACHE/models/SmolLM2-135M-Instruct-Q4_1.gguf
[ -f "$GGUF" ] || echo "note: $GGUF absent: its template is not checked"
if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_chat_refs.py" "$TMP/ref" "$GGUF" >"$TMP/gen.log" 2>&1; then
  fail "gen_chat_refs.py failed: $(tail -5 "$TMP/gen.log")"
  finish
fi
tail -1 "$TMP/gen.log"
if CTUNE_CHAT_REF_DIR="$TMP/ref" CTUNE_CHAT_GGUF="$GGUF" "$BIN"; then pass; else fail "chat renderings differ from transformers (see above)"; fi
finish
