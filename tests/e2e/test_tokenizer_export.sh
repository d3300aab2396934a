#!/usr/bin/env bash
# tests/e2e/test_tokenizer_export.sh — ct__tokenizer_write_hf against Hugging
# Face: the driver (tests/unit/test_tokenizer_export.c, with
# CTUNE_TOKEXPORT_OUT set) exports every source tokenizer that is present
# (llama2.c tok512.bin / llama2-tokenizer.bin, the GGUF vocabularies, GPT-2
# encoder.json, the SmolLM2 GGUF, and GGUF variants of the GPT-2 vocabulary
# with the Llama-3 / Qwen2 / GPT-4o pre-tokenizers) and writes ctune's ids for 300 lines of
# tinystories, 300 of tinyshakespeare and edge strings; then
# tests/golden/check_tokenizer_export.py requires `tokenizers` and
# AutoTokenizer on the written directories to give exactly those ids, and the
# decode round trips to hold where ctune's do.
source "$(dirname "$0")/common.sh"
need_python
if ! "$PY" -c "import tokenizers, transformers" 2>/dev/null; then
  echo "SKIP: the venv lacks tokenizers/transformers (scripts/requirements.txt)"
  exit 77
fi
DRIVER="$CTUNE_BUILD/test_tokenizer_export"
if [ ! -x "$DRIVER" ]; then
  fail "$DRIVER is not built"
  finish
  exit 1
fi
OUT="$TMP/export"
CHECK="$CTUNE_ROOT/tests/golden/check_tokenizer_export.py"
# GGUF variants of the GPT-2 vocabulary with other pre-tokenizers (Llama-3 +
# ignore_merges + BOS, Qwen2, GPT-4o + add_eos_token), when gguf is installed
EXTRA=""
GPT2_GGUF="$CTUNE_SHARED/models/tokenizers/vocab-gpt-2.gguf"
if [ -f "$GPT2_GGUF" ] && "$PY" -c "import gguf" 2>/dev/null; then
  EXTRA=$("$PY" "$CHECK" make-ggufs "$GPT2_GGUF" "$TMP/gguf") || fail "make-ggufs failed"
fi
if CTUNE_TOKEXPORT_OUT="$OUT" CTUNE_TOKEXPORT_SOURCES="$EXTRA" "$DRIVER"; then pass; else fail "the export driver failed"; fi
if [ -f "$OUT/manifest.txt" ]; then
  if RAYON_NUM_THREADS=2 "$PY" "$CHECK" "$OUT"; then pass
  else fail "Hugging Face ids or decodes differ from ctune's (MISMATCH lines above)"; fi
else
  fail "the driver wrote no manifest"
fi
finish
