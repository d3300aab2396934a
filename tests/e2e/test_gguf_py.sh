#!/usr/bin/env bash
# GGUF files written by gguf-py (llama.cpp's Python writer and quantizers):
# tests/golden/gen_gguf.py writes them into a temp dir, then the unit test
# programs check them with CTUNE_GGUF_PY_DIR set:
#   test_quant — ct__dequant_row equals gguf.quants.dequantize bit for bit and
#                the quantize_row refs reproduce gguf.quants.quantize bytes
#                (F32 F16 BF16 Q8_0 Q4_0 Q4_1);
#   test_gguf  — every metadata value type, nested arrays, integer tensors,
#                general.alignment 64, tiny qwen2/gpt2/llama configs.
source "$(dirname "$0")/common.sh"
need_python

for prog in test_quant test_gguf; do
  if [ ! -x "$CTUNE_BUILD/$prog" ]; then
    echo "SKIP: $CTUNE_BUILD/$prog is not built"
    exit 77
  fi
done

if ! "$PY" "$CTUNE_ROOT/tests/golden/gen_gguf.py" "$TMP/gguf" >"$TMP/gen.log" 2>&1; then
  fail "gen_gguf.py: $(tail -n 5 "$TMP/gen.log")"
  finish; exit 1
fi
cat "$TMP/gen.log"

for prog in test_quant test_gguf; do
  if CTUNE_GGUF_PY_DIR="$TMP/gguf" "$CTUNE_BUILD/$prog" >"$TMP/$prog.out" 2>&1; then
    pass; tail -n 1 "$TMP/$prog.out"
  else
    fail "$prog with gguf-py files: $(grep -v '^ok ' "$TMP/$prog.out" | tail -n 20)"
  fi
done

# The same files through gguf-py's own reader: what it reports must be what
# the generator meant (guards the generator itself against gguf-py changes).
if "$PY" - "$TMP/gguf" >"$TMP/py.out" 2>&1 <<'PYEOF'
import sys, numpy as np, gguf
d = sys.argv[1]
r = gguf.GGUFReader(f"{d}/quant.gguf")
assert r.alignment == 64, r.alignment
t = {x.name: x for x in r.tensors}
for q in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"):
    assert t[f"{q}.q"].tensor_type.name == q, (q, t[f"{q}.q"].tensor_type)
    deq = gguf.quants.dequantize(t[f"{q}.q"].data, t[f"{q}.q"].tensor_type)
    assert np.array_equal(deq.reshape(-1).view(np.uint32), np.asarray(t[f"{q}.deq"].data).reshape(-1).view(np.uint32)), q
print("gguf-py reader agrees with the generator")
PYEOF
then pass; cat "$TMP/py.out"; else fail "gguf-py re-read: $(tail -n 5 "$TMP/py.out")"; fi
finish
