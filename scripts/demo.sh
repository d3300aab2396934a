#!/usr/bin/env bash
# scripts/demo.sh — the README's first command: set up, build, and fine-tune
# the real pretrained stories260K model (../shared, trained on children's
# stories) with LoRA on tinyshakespeare, showing the model before and after:
# validation loss, perplexity on Shakespeare and on TinyStories (what it
# forgets), and a sample from the same seed. About a minute on 2 cores.
# Output: out/demo-lora/ (PEFT adapter, metrics.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-python >/dev/null
scripts/build.sh build >/dev/null
M=../shared/models/stories260K
D=../shared/data/text
OUT=out/demo-lora
run() { echo "\$ $*"; "$@"; }
ppl() { build/ctune eval $M/stories260K.bin --tokenizer $M/tok512.bin "$@" 2>&1 | awk '/^perplexity/{print $2}'; }

echo "== before: stories260K as pretrained"
run build/ctune generate $M/stories260K.bin --tokenizer $M/tok512.bin -p "ROMEO:" -n 60 --temp 0.8 --seed 7 --echo 2>/dev/null
echo
echo "== LoRA fine-tuning on tinyshakespeare"
rm -rf "$OUT"
run build/ctune train $M/stories260K.bin --tokenizer $M/tok512.bin --data $D/tinyshakespeare.txt --val-split 0.05 \
  --max-len 128 --batch 16 --method lora --targets all-linear --r 16 --alpha 32 --lr 2e-3 --warmup 20 \
  --max-steps 200 --eval-every 50 --no-progress -o "$OUT"
echo
echo "== after: the same prompt and seed with the adapter"
run build/ctune generate $M/stories260K.bin --tokenizer $M/tok512.bin --adapter "$OUT" -p "ROMEO:" -n 60 --temp 0.8 \
  --seed 7 --echo 2>/dev/null
echo
printf '%-34s %10s %10s\n' "perplexity (ctx 128)" before after
printf '%-34s %10s %10s\n' "tinyshakespeare (the new task)" "$(ppl --data $D/tinyshakespeare.txt --ctx 128 --stride 128)" \
  "$(ppl --adapter "$OUT" --data $D/tinyshakespeare.txt --ctx 128 --stride 128)"
printf '%-34s %10s %10s\n' "tinystories-sample (forgetting)" "$(ppl --data $D/tinystories-sample.txt --ctx 128 --stride 128)" \
  "$(ppl --adapter "$OUT" --data $D/tinystories-sample.txt --ctx 128 --stride 128)"
