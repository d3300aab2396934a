#!/usr/bin/env bash
# tests/e2e/test_tokenizer.sh — ctune's token ids must equal the reference
# tokenizers' ids on every record of ../shared/data/text/* (one record per
# line), of every Alpaca text (instruction, input, output) and of a file of
# hand-written edge cases, for every loader of each vocabulary:
#   GPT-2:   encoder.json + vocab.bpe, tokenizer.json (GPT2TokenizerFast),
#            vocab-gpt-2.gguf                     -> HF `tokenizers` ids
#   Llama-2: tokenizer.json (Hub layout: Prepend+Replace normalizer) and a
#            Metaspace(prepend_scheme=first) variant -> HF `tokenizers` ids
#            llama2-tokenizer.bin, vocab-llama-spm.gguf (merge by score)
#                                                 -> SentencePiece ids
#   trained byte-level BPEs: Llama-3 Split regex + ignore_merges; Qwen2 regex
#            + NFC + ChatML specials + lstrip/rstrip/single_word added tokens
#                                                 -> HF `tokenizers` ids
# The score-based loaders are also compared with HF's converted tokenizer.json
# and the count is reported (not a failure): transformers orders the merges
# of a converted SentencePiece model by piece id, so "▁ ▁" (id 259, score
# -1e9) merges first in HF while SentencePiece merges it last.
# Then decode(encode(x)) == x on every record (byte-exact), for every loader
# whose normalization is reversible (not NFC, not Metaspace "first").
# References are generated once by tests/golden/gen_tokenizer_refs.py and
# cached under $CTUNE_CACHE/tokenizer-refs/<hash of the generator>.
source "$(dirname "$0")/common.sh"
need_python
if ! "$PY" -c "import tokenizers, transformers, sentencepiece, google.protobuf" 2>/dev/null; then
  echo "SKIP: the venv lacks tokenizers/transformers/sentencepiece/protobuf (scripts/requirements.txt)"
  exit 77
fi
S="$CTUNE_SHARED/models/tokenizers"
for f in gpt2-encoder.json gpt2-vocab.bpe vocab-gpt-2.gguf llama2-tokenizer.model llama2-tokenizer.bin vocab-llama-spm.gguf; do
  [ -f "$S/$f" ] || { echo "SKIP: $S/$f is missing"; exit 77; }
done

GEN="$CTUNE_ROOT/tests/golden/gen_tokenizer_refs.py"
key=$(cat "$GEN" | md5sum | cut -c1-12)
REF="$CTUNE_CACHE/tokenizer-refs/$key"
if [ ! -f "$REF/DONE" ]; then
  echo "generating reference ids into $REF (once, ~30 s)"
  rm -rf "$REF.tmp" && mkdir -p "$REF.tmp"
  RAYON_NUM_THREADS=2 "$PY" "$GEN" gen "$CTUNE_SHARED" "$REF.tmp"
  rm -rf "$REF" && mv "$REF.tmp" "$REF"
fi
INPUTS=$(cd "$REF/in" && ls *.txt | sed 's/\.txt$//')
MAN="$TMP/manifest"
: > "$MAN"

# run LABEL REFNAME MODE SOURCE [ctune args]: encode every input, queue the comparisons.
run() {
  local label=$1 ref=$2 mode=$3 src=$4; shift 4
  for in in $INPUTS; do
    local out="$TMP/$label.$in.ids"
    if ! "$CTUNE" tokenize "$src" -z "$@" < "$REF/in/$in.txt" > "$out"; then
      fail "$label: ctune tokenize $src failed on $in"; continue
    fi
    echo "ids $mode $label/$in $REF/ref/$ref.$in.ids $out" >> "$MAN"
  done
}
# roundtrip LABEL KIND SOURCE: decode(encode(x)) == x, specials read as plain
# text (KIND text-spm: a literal "▁" in x comes back as ' ', as in SentencePiece).
roundtrip() {
  local label=$1 kind=$2 src=$3
  for in in $INPUTS; do
    local out="$TMP/$label.$in.rt"
    if ! "$CTUNE" tokenize "$src" -z --no-special < "$REF/in/$in.txt" | "$CTUNE" tokenize "$src" --decode -z > "$out"; then
      fail "$label: round trip through $src failed on $in"; continue
    fi
    echo "$kind strict roundtrip:$label/$in $REF/in/$in.txt $out" >> "$MAN"
  done
}

t0=$(date +%s)
run gpt2-encoder.json gpt2 strict "$S/gpt2-encoder.json"
run gpt2-tokenizer.json gpt2 strict "$REF/tok/gpt2/tokenizer.json"
run gpt2-vocab.gguf gpt2 strict "$S/vocab-gpt-2.gguf"
run llama2-tokenizer.json llama2 strict "$REF/tok/llama2/tokenizer.json"
run llama2-metaspace.json llama2ms strict "$REF/tok/llama2ms/tokenizer.json"
run llama2-tokenizer.bin spm strict "$S/llama2-tokenizer.bin" --no-special
run llama2-spm.gguf spm strict "$S/vocab-llama-spm.gguf" --no-special
run llama2-tokenizer.bin-vs-hf llama2 report "$S/llama2-tokenizer.bin"
run llama2-spm.gguf-vs-hf llama2 report "$S/vocab-llama-spm.gguf"
run bytelevel-llama3-regex bl3 strict "$REF/tok/bl3/tokenizer.json"
run bytelevel-qwen2-regex-nfc qwen strict "$REF/tok/qwen/tokenizer.json"
roundtrip gpt2-encoder.json text "$S/gpt2-encoder.json"
roundtrip gpt2-vocab.gguf text "$S/vocab-gpt-2.gguf"
roundtrip llama2-tokenizer.json text-spm "$REF/tok/llama2/tokenizer.json"
roundtrip llama2-tokenizer.bin text-spm "$S/llama2-tokenizer.bin"
roundtrip llama2-spm.gguf text-spm "$S/vocab-llama-spm.gguf"
roundtrip bytelevel-llama3-regex text "$REF/tok/bl3/tokenizer.json"
t1=$(date +%s)
echo "ctune runs: $((t1 - t0)) s"

if "$PY" "$GEN" check "$MAN"; then pass; else fail "token ids or round trips differ (see above)"; fi

# BOS defaults and --no-bos: Llama-2 adds <s> (1), GPT-2 adds nothing.
got=$(printf 'Hello world\n' | "$CTUNE" tokenize "$S/llama2-tokenizer.bin")
[ "$got" = "1 15043 3186" ] && pass || fail "llama2 BOS default: got '$got'"
got=$(printf 'Hello world\n' | "$CTUNE" tokenize "$S/vocab-llama-spm.gguf" --no-bos)
[ "$got" = "15043 3186" ] && pass || fail "llama2 --no-bos: got '$got'"
got=$(printf 'Hello world\n' | "$CTUNE" tokenize "$S/gpt2-encoder.json")
[ "$got" = "15496 995" ] && pass || fail "gpt2: got '$got'"
# a llama2.c checkpoint through the model loader (--tokenizer)
M="$CTUNE_SHARED/models/stories260K"
if [ -f "$M/stories260K.bin" ]; then
  a=$(printf 'Once upon a time\n' | "$CTUNE" tokenize "$M/stories260K.bin" --tokenizer "$M/tok512.bin")
  b=$(printf 'Once upon a time\n' | "$CTUNE" tokenize "$M/tok512.bin")
  c=$(printf 'Once upon a time\n' | "$CTUNE" tokenize "$M/stories260K.gguf")
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ] && pass || fail "stories260K: model '$a', tok512.bin '$b', gguf '$c'"
fi
# bad input: a clear error, not a crash
printf 'not a tokenizer' > "$TMP/bad.bin"
if "$CTUNE" tokenize "$TMP/bad.bin" < /dev/null 2> "$TMP/err"; then fail "bad tokenizer accepted"
elif grep -q "ctune:" "$TMP/err"; then pass; else fail "no error message for a bad tokenizer"; fi
finish
