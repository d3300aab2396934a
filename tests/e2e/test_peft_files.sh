#!/usr/bin/env bash
# Files ctune writes for the ecosystem, loaded by it: test_peft (with
# CTUNE_PEFT_OUT_DIR set) writes a tiny Llama as a Hugging Face directory
# (config.json + model.safetensors), a LoRA adapter for it (adapter_config.json
# + adapter_model.safetensors, PEFT names), configs of mistral/qwen2/gpt2 and
# a F32/F16/BF16 safetensors file; tests/golden/check_peft_files.py then loads
# them with safetensors, transformers (AutoModelForCausalLM.from_pretrained: no
# missing/unexpected keys, exact values) and PEFT (PeftModel.from_pretrained:
# exact lora_A/lora_B, merge_and_unload = W + alpha/r B A).
source "$(dirname "$0")/common.sh"
need_python
BIN=$CTUNE_BUILD/test_peft
if [ ! -x "$BIN" ]; then
  echo "FAIL: $BIN not built"; exit 1
fi
if CTUNE_PEFT_OUT_DIR="$TMP/out" "$BIN" >"$TMP/c.log" 2>&1; then
  pass; tail -n 1 "$TMP/c.log"
else
  fail "test_peft writing the files: $(tail -n 20 "$TMP/c.log")"
  finish; exit 1
fi
if "$PY" "$CTUNE_ROOT/tests/golden/check_peft_files.py" "$TMP/out" >"$TMP/py.log" 2>&1; then
  pass; tail -n 1 "$TMP/py.log"
else
  fail "check_peft_files.py: $(grep -E '^FAIL|Error|error' "$TMP/py.log" | tail -n 20)"
  tail -n 30 "$TMP/py.log" >&2
fi
finish
