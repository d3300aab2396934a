#!/usr/bin/env bash
# scripts/demo.sh — set up, build, and generate text with the real pretrained
# stories260K model from ../shared (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-python >/dev/null
scripts/build.sh build >/dev/null
M=../shared/models/stories260K
echo "\$ build/ctune info $M/stories260K.gguf"
build/ctune info $M/stories260K.gguf
echo
echo "\$ build/ctune generate $M/stories260K.bin --tokenizer $M/tok512.bin -p \"Once upon a time\" -n 200 --echo"
build/ctune generate $M/stories260K.bin --tokenizer $M/tok512.bin -p "Once upon a time" -n 200 --echo
