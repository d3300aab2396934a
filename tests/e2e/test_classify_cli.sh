#!/usr/bin/env bash
# Classification end to end on the real stories260K and the real SMS Spam
# Collection: `ctune train --method head` beats the majority class on a
# stratified held-out 20%, `ctune classify --head` prints accuracy, macro-F1
# and the confusion matrix and writes predictions, label words give a
# zero-/few-shot baseline, and bad input (a label the head never saw, label
# words that cannot be told apart) fails with a message naming it. LoRA +
# head, prompt and prefix tuning by label words train and classify through their
# adapters; `ctune compare` prints one table (and CSV/JSON) over five methods
# and refuses a method that does not exist yet. Prompt tuning as a language
# model (`ctune train --method prompt`) lowers the validation loss.
source "$(dirname "$0")/common.sh"
M=$CTUNE_SHARED/models/stories260K
BIN=$M/stories260K.bin
TOK=$M/tok512.bin
SMS=$CTUNE_SHARED/data/sms-spam/SMSSpamCollection
head -n 1200 "$SMS" >"$TMP/sms1200.tsv"
head -n 500 "$SMS" >"$TMP/sms500.tsv"
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --method head --data "$SMS" --val-split 0.2 -o "$TMP/head" \
     >"$TMP/head.log" 2>&1; then pass; else fail "head training: $(tail -3 "$TMP/head.log")"; fi
acc=$(grep -o 'val accuracy [0-9.]*' "$TMP/head.log" | awk '{print $3}')
echo "head on the frozen stories260K: val accuracy $acc (majority class: 0.865)"
awk -v a="$acc" 'BEGIN{exit !(a > 0.88)}' && pass || fail "head val accuracy $acc not above the majority baseline"
for f in head.safetensors head_config.json; do [ -s "$TMP/head/$f" ] && pass || fail "no $f"; done
grep -q '"spam"' "$TMP/head/head_config.json" && pass || fail "label set not saved"
# early stopping on the validation loss: the epochs stop after --patience without a lower one
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --method head --data "$TMP/sms1200.tsv" --val-split 0.2 --early-stop loss --patience 2 \
     --epochs 200 --lr 0.05 -o "$TMP/headl" >"$TMP/headl.log" 2>&1; then pass; else fail "head --early-stop loss: $(tail -2 "$TMP/headl.log")"; fi
grep -q 'epochs, best' "$TMP/headl.log" && ! grep -q '(200 epochs' "$TMP/headl.log" && pass \
  || fail "early stopping on loss did not stop: $(tail -1 "$TMP/headl.log")"
# classify with the head: the report, and one prediction per line
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --head "$TMP/head" --data "$SMS" --predictions "$TMP/pred.tsv" \
  >"$TMP/cls.txt" 2>"$TMP/cls.log" || fail "classify --head: $(tail -3 "$TMP/cls.log")"
grep -q '^accuracy 0\.9' "$TMP/cls.txt" && grep -q 'confusion matrix' "$TMP/cls.txt" && pass \
  || fail "classify report: $(head -3 "$TMP/cls.txt")"
[ "$(wc -l <"$TMP/pred.tsv")" = 4574 ] && pass || fail "predictions: $(wc -l <"$TMP/pred.tsv") lines"
# a label the head never saw is named
printf 'label\ttext\nham\thello there\nmaybe\twhat is this\n' >"$TMP/bad.tsv"
if "$CTUNE" classify "$BIN" --tokenizer "$TOK" --head "$TMP/head" --data "$TMP/bad.tsv" >"$TMP/bad.txt" 2>&1; then
  fail "an unseen label was accepted"
else
  grep -q "bad.tsv:3: label 'maybe' is not in the label set" "$TMP/bad.txt" && pass || fail "unseen label: $(cat "$TMP/bad.txt")"
fi
# label words: zero- and few-shot run and report; words that share every token are refused
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --words "ham= normal,spam= spam" --shots 2 --shots-from "$SMS" \
  --data "$TMP/sms500.tsv" >"$TMP/fs.txt" 2>"$TMP/fs.log" && grep -q '^accuracy' "$TMP/fs.txt" && pass \
  || fail "few-shot: $(tail -2 "$TMP/fs.log")"
if "$CTUNE" classify "$BIN" --tokenizer "$TOK" --words "ham= spam,spam= spam" --data "$SMS" >"$TMP/w.txt" 2>&1; then
  fail "identical label words accepted"
else grep -q "is a token prefix of another label word" "$TMP/w.txt" && pass || fail "label words: $(cat "$TMP/w.txt")"; fi
# LoRA + head trains and ctune classify reads its SEQ_CLS adapter
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --task classify --method lora --targets all-linear --data "$TMP/sms1200.tsv" \
     --val-split 0.2 --epochs 1 -o "$TMP/lh" --quiet >"$TMP/lh.log" 2>&1; then pass; else fail "lora+head: $(tail -3 "$TMP/lh.log")"; fi
grep -q '"task_type": "SEQ_CLS"' "$TMP/lh/adapter_config.json" && pass || fail "lora+head adapter is not SEQ_CLS"
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --head "$TMP/lh" --data "$TMP/sms1200.tsv" >"$TMP/lhc.txt" 2>&1 \
  && grep -q '^accuracy' "$TMP/lhc.txt" && pass || fail "classify with the LoRA + head adapter: $(tail -2 "$TMP/lhc.txt")"
# prompt tuning for classification (label words) trains, saves, and classifies
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --task classify --method prompt --words "ham= normal,spam= spam" \
     --data "$TMP/sms1200.tsv" --val-split 0.2 --epochs 1 -o "$TMP/pc" --quiet >"$TMP/pc.log" 2>&1; then pass
else fail "prompt classification: $(tail -3 "$TMP/pc.log")"; fi
grep -q '"peft_type": "PROMPT_TUNING"' "$TMP/pc/adapter_config.json" && grep -q '"words"' "$TMP/pc/head_config.json" \
  && pass || fail "prompt classifier files"
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --head "$TMP/pc" --data "$TMP/sms1200.tsv" >"$TMP/pcc.txt" 2>&1 \
  && grep -q '^accuracy' "$TMP/pcc.txt" && pass || fail "classify with the prompt adapter: $(tail -2 "$TMP/pcc.txt")"
# full fine-tuning + head: a *ForSequenceClassification directory that ctune classify reads as a model
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --task classify --method full --data "$TMP/sms1200.tsv" \
     --val-split 0.2 --epochs 1 -o "$TMP/fc" --quiet >"$TMP/fc.log" 2>&1; then pass; else fail "full+head: $(tail -3 "$TMP/fc.log")"; fi
grep -q '"LlamaForSequenceClassification"' "$TMP/fc/config.json" && grep -q '"id2label"' "$TMP/fc/config.json" \
  && pass || fail "full+head config.json"
"$CTUNE" classify "$TMP/fc" --tokenizer "$TOK" --data "$TMP/sms1200.tsv" >"$TMP/fcc.txt" 2>&1 \
  && grep -q '^accuracy' "$TMP/fcc.txt" && grep -q '^spam' "$TMP/fcc.txt" && pass \
  || fail "classify with the full classifier: $(tail -2 "$TMP/fcc.txt")"
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --data "$TMP/sms1200.tsv" >"$TMP/nohead.txt" 2>&1 \
  && fail "classify without a head accepted" || grep -q "no classifier head" "$TMP/nohead.txt" && pass
# prefix tuning for classification, the same way (PEFT PREFIX_TUNING files)
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --task classify --method prefix --words "ham= normal,spam= spam" \
     --data "$TMP/sms1200.tsv" --val-split 0.2 --epochs 1 -o "$TMP/xc" --quiet >"$TMP/xc.log" 2>&1; then pass
else fail "prefix classification: $(tail -3 "$TMP/xc.log")"; fi
grep -q '"peft_type": "PREFIX_TUNING"' "$TMP/xc/adapter_config.json" && grep -q '"method": "prefix"' "$TMP/xc/head_config.json" \
  && pass || fail "prefix classifier files"
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --head "$TMP/xc" --data "$TMP/sms1200.tsv" >"$TMP/xcc.txt" 2>&1 \
  && grep -q '^accuracy' "$TMP/xcc.txt" && pass || fail "classify with the prefix adapter: $(tail -2 "$TMP/xcc.txt")"
# ctune compare: one table, CSV and JSON, every method on the same split
head -c 20000 "$CTUNE_SHARED/data/text/tinystories-sample.txt" >"$TMP/general.txt"
if "$CTUNE" compare "$BIN" --tokenizer "$TOK" --data "$TMP/sms500.tsv" --words "ham= normal,spam= spam" \
     --methods zero-shot,few-shot,head,prompt,prefix,lora,full --general "$TMP/general.txt" --shots 2 -o "$TMP/cmp" \
     --csv "$TMP/cmp.csv" --json "$TMP/cmp.json" >"$TMP/cmp.md" 2>"$TMP/cmp.log"; then pass
else fail "compare: $(tail -3 "$TMP/cmp.log")"; fi
cat "$TMP/cmp.md"
[ "$(grep -c '^| \(zero-shot\|few-shot\|head\|prompt\|prefix\|lora\|full\) |' "$TMP/cmp.md")" = 7 ] && pass || fail "compare table rows"
# full fine-tuning changes the base: its forgetting cell is measured (stories260K ties its embeddings)
grep '^| full |' "$TMP/cmp.md" | grep -q '(+' && pass || fail "compare: no forgetting for full"
[ "$(wc -l <"$TMP/cmp.csv")" = 8 ] && pass || fail "compare CSV: $(wc -l <"$TMP/cmp.csv") lines"
if [ -x "$PY" ]; then
  "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==7 and all(r['ok'] for r in d)" "$TMP/cmp.json" \
    && pass || fail "compare JSON: $(head -c 300 "$TMP/cmp.json")"
fi
"$CTUNE" compare "$BIN" --tokenizer "$TOK" --data "$TMP/sms1200.tsv" --words "ham= normal,spam= spam" --methods fancy \
  -o "$TMP/cmp2" >"$TMP/cmp2.txt" 2>&1 && fail "compare accepted an unknown method" || grep -q "is unknown" "$TMP/cmp2.txt" && pass
# prompt tuning lowers the validation loss and writes PEFT's PROMPT_TUNING files
head -c 60000 "$CTUNE_SHARED/data/text/tinyshakespeare.txt" >"$TMP/shake.txt"
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --data "$TMP/shake.txt" --val-split 0.1 --max-len 64 --batch 8 \
     --method prompt --num-virtual-tokens 8 --prompt-init vocab --max-steps 30 --eval-every 15 --no-progress \
     -o "$TMP/prompt" >"$TMP/prompt.log" 2>&1; then pass; else fail "prompt tuning: $(tail -3 "$TMP/prompt.log")"; fi
p1=$(grep -o '"val_loss": [0-9.]*' "$TMP/prompt/metrics.jsonl" | head -1 | awk '{print $2}')
p2=$(grep -o '"val_loss": [0-9.]*' "$TMP/prompt/metrics.jsonl" | tail -1 | awk '{print $2}')
echo "prompt tuning: val loss $p1 -> $p2"
awk -v a="$p1" -v b="$p2" 'BEGIN{exit !(b < a - 0.05)}' && pass || fail "prompt tuning val loss $p1 -> $p2"
grep -q '"peft_type": "PROMPT_TUNING"' "$TMP/prompt/adapter_config.json" && pass || fail "prompt adapter config"
# prefix tuning as a language model (the prefix starts as the cache of sampled tokens): the same
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --data "$TMP/shake.txt" --val-split 0.1 --max-len 64 --batch 8 \
     --method prefix --num-virtual-tokens 8 --prompt-init vocab --max-steps 30 --eval-every 15 --no-progress \
     -o "$TMP/prefix" >"$TMP/prefix.log" 2>&1; then pass; else fail "prefix tuning: $(tail -3 "$TMP/prefix.log")"; fi
p1=$(grep -o '"val_loss": [0-9.]*' "$TMP/prefix/metrics.jsonl" | head -1 | awk '{print $2}')
p2=$(grep -o '"val_loss": [0-9.]*' "$TMP/prefix/metrics.jsonl" | tail -1 | awk '{print $2}')
echo "prefix tuning: val loss $p1 -> $p2"
awk -v a="$p1" -v b="$p2" 'BEGIN{exit !(b < a - 0.05)}' && pass || fail "prefix tuning val loss $p1 -> $p2"
grep -q '"peft_type": "PREFIX_TUNING"' "$TMP/prefix/adapter_config.json" && pass || fail "prefix adapter config"
# label words under language-model adapters: prompt/prefix (their virtual tokens) and LoRA (merged)
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --adapter "$TMP/prefix" --words "ham= normal,spam= spam" \
  --data "$TMP/sms500.tsv" >"$TMP/xa.txt" 2>&1 && grep -q '^accuracy' "$TMP/xa.txt" && pass \
  || fail "classify --adapter (prefix LM) --words: $(tail -2 "$TMP/xa.txt")"
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --data "$TMP/shake.txt" --max-len 64 --batch 4 --method lora \
     --max-steps 5 --no-progress --quiet -o "$TMP/lora_lm" >"$TMP/ll.log" 2>&1; then pass; else fail "lora lm: $(tail -2 "$TMP/ll.log")"; fi
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --adapter "$TMP/lora_lm" --words "ham= normal,spam= spam" \
  --data "$TMP/sms500.tsv" >"$TMP/la.txt" 2>&1 && grep -q '^accuracy' "$TMP/la.txt" && pass \
  || fail "classify --adapter (LoRA LM) --words: $(tail -2 "$TMP/la.txt")"
"$CTUNE" classify "$BIN" --tokenizer "$TOK" --adapter "$TMP/lora_lm" --data "$TMP/sms1200.tsv" >"$TMP/la2.txt" 2>&1 \
  && fail "an LM adapter without words accepted" || grep -q "give the label words" "$TMP/la2.txt" && pass
finish
