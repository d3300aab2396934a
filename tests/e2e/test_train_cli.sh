#!/usr/bin/env bash
# `ctune train` end to end on the real stories260K model and real text
# (tinyshakespeare): LoRA lowers the validation loss and the perplexity seen
# through `ctune eval --adapter`; a run killed with SIGKILL part-way and
# resumed from its last checkpoint ends with the same adapter bytes as an
# uninterrupted run (dropout on, so the RNG streams are checked too); full
# fine-tuning writes a Hugging Face directory ctune loads back; early
# stopping; a NaN run stops with a message naming the checkpoint; bad rows
# and bad options fail with messages naming the file and line.
source "$(dirname "$0")/common.sh"
M=$CTUNE_SHARED/models/stories260K
BIN=$M/stories260K.bin
TOK=$M/tok512.bin
head -c 60000 "$CTUNE_SHARED/data/text/tinyshakespeare.txt" >"$TMP/shake.txt"
COMMON=(--tokenizer "$TOK" --data "$TMP/shake.txt" --max-len 64 --val-split 0.1 --batch 8 -t 2 --no-progress)

# 1. LoRA: validation loss falls, the adapter lowers perplexity on the task text
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method lora --targets all-linear --r 8 --lr 2e-3 --max-steps 40 \
     --eval-every 20 -o "$TMP/lora" >"$TMP/lora.log" 2>&1; then pass; else fail "lora run: $(tail -3 "$TMP/lora.log")"; fi
for f in adapter_config.json adapter_model.safetensors metrics.jsonl best/adapter_model.safetensors; do
  if [ -s "$TMP/lora/$f" ]; then pass; else fail "lora run did not write $f"; fi
done
v1=$(grep -o '"val_loss": [0-9.]*' "$TMP/lora/metrics.jsonl" | head -1 | awk '{print $2}')
v2=$(grep -o '"val_loss": [0-9.]*' "$TMP/lora/metrics.jsonl" | tail -1 | awk '{print $2}')
if awk -v a="$v1" -v b="$v2" 'BEGIN{exit !(b < a - 0.05)}'; then pass
else fail "validation loss did not fall: $v1 -> $v2"; fi
p0=$("$CTUNE" eval "$BIN" --tokenizer "$TOK" --data "$TMP/shake.txt" --ctx 64 --stride 64 2>&1 | awk '/^perplexity/{print $2}')
p1=$("$CTUNE" eval "$BIN" --tokenizer "$TOK" --adapter "$TMP/lora" --data "$TMP/shake.txt" --ctx 64 --stride 64 2>&1 |
     awk '/^perplexity/{print $2}')
echo "perplexity on the training text: base $p0, with the adapter $p1"
if awk -v a="$p0" -v b="$p1" 'BEGIN{exit !(b < 0.8 * a)}'; then pass; else fail "adapter did not lower perplexity: $p0 -> $p1"; fi
if "$CTUNE" generate "$BIN" --tokenizer "$TOK" --adapter "$TMP/lora" -p "ROMEO:" -n 20 >"$TMP/gen.txt" 2>&1; then pass
else fail "generate --adapter: $(cat "$TMP/gen.txt")"; fi

# 1b. QLoRA (the same run over a 4-bit NF4 base, checkpointing on by default):
# the validation loss falls and ends within 3% of LoRA's
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method qlora --targets all-linear --r 8 --lr 2e-3 --max-steps 40 \
     --eval-every 20 -o "$TMP/qlora" >"$TMP/qlora.log" 2>&1; then pass; else fail "qlora run: $(tail -3 "$TMP/qlora.log")"; fi
q2=$(grep -o '"val_loss": [0-9.]*' "$TMP/qlora/metrics.jsonl" | tail -1 | awk '{print $2}')
echo "final validation loss: LoRA $v2, QLoRA $q2"
if awk -v a="$v2" -v b="$q2" 'BEGIN{exit !(b < a * 1.03 && b > a * 0.97)}'; then pass
else fail "QLoRA val loss $q2 not within 3% of LoRA's $v2"; fi
grep -q "QLoRA (NF4 base)" "$TMP/qlora.log" && pass || fail "qlora summary line: $(head -4 "$TMP/qlora.log")"
grep -q '"ctune_base_quantization"' "$TMP/qlora/adapter_config.json" && grep -q '"type": "nf4"' "$TMP/qlora/adapter_config.json" \
  && pass || fail "the QLoRA adapter config does not record its NF4 base"
# the Q8_0 base trains too, and its adapter says so
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method qlora --base-dtype q8 --targets all-linear --r 8 --lr 2e-3 \
     --max-steps 10 -o "$TMP/qlora8" >"$TMP/qlora8.log" 2>&1 && grep -q "QLoRA (Q8_0 base)" "$TMP/qlora8.log" \
     && grep -q '"type": "q8"' "$TMP/qlora8/adapter_config.json"; then pass
else fail "qlora --base-dtype q8: $(tail -3 "$TMP/qlora8.log")"; fi
"$CTUNE" train "$BIN" "${COMMON[@]}" --method lora --base-dtype q8 -o "$TMP/x" >"$TMP/bd.log" 2>&1 \
  && fail "--base-dtype with --method lora was accepted" || grep -q "is for --method qlora" "$TMP/bd.log" && pass

# 1c. ctune plan: its trainable count is the run's, its file size the adapter's
# (within 2%: the header is estimated), and its peak within 15% of the run's
# (a run of 8 x 256-token rows, where the buffers, not the program, dominate)
PLANRUN=(--tokenizer "$TOK" --data "$TMP/shake.txt" --max-len 256 --batch 8 -t 2 --no-progress --method lora
         --targets all-linear --r 8)
"$CTUNE" train "$BIN" "${PLANRUN[@]}" --max-steps 2 -o "$TMP/planrun" >"$TMP/planrun.log" 2>&1 \
  || fail "plan check run: $(tail -3 "$TMP/planrun.log")"
"$CTUNE" plan "$BIN" "${PLANRUN[@]}" --json >"$TMP/plan.json" 2>"$TMP/plan.log" || fail "plan: $(cat "$TMP/plan.log")"
ntr=$(grep -o '"n_trainable": [0-9]*' "$TMP/plan.json" | awk '{print $2}')
fb=$(grep -o '"file_bytes": [0-9]*' "$TMP/plan.json" | awk '{print $2}')
pk=$(grep -o '"peak_bytes": [0-9]*' "$TMP/plan.json" | awk '{print $2}')
ntr_run=$(grep -o '^LoRA: [0-9]* trainable' "$TMP/planrun.log" | awk '{print $2}')
asz=$(stat -c %s "$TMP/planrun/adapter_model.safetensors")
rss=$(grep -o 'peak RSS [0-9.]* [KMG]iB' "$TMP/planrun.log" | awk '{v=$3; if ($4=="GiB") v*=1024; if ($4=="KiB") v/=1024; print v*1048576}')
echo "plan: $ntr trainable (run: $ntr_run), file $fb bytes (adapter: $asz), peak $pk bytes (run: $rss)"
[ -n "$ntr" ] && [ "$ntr" = "$ntr_run" ] && pass || fail "plan's trainable count $ntr != the run's $ntr_run"
awk -v a="$fb" -v b="$asz" 'BEGIN{exit !(a > 0.98 * b && a < 1.02 * b)}' && pass || fail "plan's file size $fb vs $asz"
awk -v a="$pk" -v b="$rss" 'BEGIN{exit !(b > 0.85 * a && b < 1.15 * a)}' && pass || fail "plan's peak $pk vs measured $rss"
# the memory check refuses before it allocates, names the numbers and what fits, and leaves no output
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method full --memory-limit 0.03 -o "$TMP/toobig" >"$TMP/big.log" 2>&1; then
  fail "a run over --memory-limit started"
else
  grep -q "not enough memory: this run needs about" "$TMP/big.log" && grep -q "fits (" "$TMP/big.log" && pass \
    || fail "memory check message: $(cat "$TMP/big.log")"
  [ ! -e "$TMP/toobig" ] && pass || fail "the refused run left $TMP/toobig behind"
fi

# 2. kill -9 part-way, resume, same bytes as an uninterrupted run
RUN=(--method lora --r 4 --dropout 0.1 --lr 1e-3 --warmup 5 --max-steps 240 --save-every 40 --eval-every 60)
"$CTUNE" train "$BIN" "${COMMON[@]}" "${RUN[@]}" -o "$TMP/full_run" >"$TMP/full_run.log" 2>&1 ||
  fail "uninterrupted run: $(tail -3 "$TMP/full_run.log")"
"$CTUNE" train "$BIN" "${COMMON[@]}" "${RUN[@]}" -o "$TMP/killed" >"$TMP/killed.log" 2>&1 &
pid=$!
for _ in $(seq 1 400); do
  [ -d "$TMP/killed/checkpoint-80" ] && break
  sleep 0.02
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
if [ -e "$TMP/killed/adapter_model.safetensors" ]; then
  fail "the run finished before it could be killed (make it longer)"
else
  last=$(ls -d "$TMP"/killed/checkpoint-* 2>/dev/null | grep -v '\.tmp$' | sort -t- -k2 -n | tail -1)
  echo "killed the run; resuming from $(basename "${last:-none}")"
  if [ -n "$last" ] && "$CTUNE" train "$BIN" "${COMMON[@]}" "${RUN[@]}" -o "$TMP/killed" --resume "$last" \
       >"$TMP/resume.log" 2>&1; then pass; else fail "resume: $(tail -3 "$TMP/resume.log")"; fi
  if cmp -s "$TMP/full_run/adapter_model.safetensors" "$TMP/killed/adapter_model.safetensors"; then pass
  else fail "resumed run's adapter differs from the uninterrupted run's"; fi
  n1=$(wc -l <"$TMP/full_run/metrics.jsonl"); n2=$(wc -l <"$TMP/killed/metrics.jsonl")
  if [ "$n1" = "$n2" ]; then pass; else fail "metrics.jsonl: $n1 lines uninterrupted, $n2 after resume"; fi
fi

# 2b. gradient accumulation: 4 micro-batches of 2 give the batch of 8's steps
ACC=(--method lora --r 4 --dropout 0 --lr 1e-3 --max-steps 8 --log-every 1)
"$CTUNE" train "$BIN" "${COMMON[@]}" "${ACC[@]}" -o "$TMP/acc8" >"$TMP/acc8.log" 2>&1 || fail "batch 8: $(tail -2 "$TMP/acc8.log")"
"$CTUNE" train "$BIN" "${COMMON[@]}" "${ACC[@]}" --micro-batch 2 -o "$TMP/acc2" >"$TMP/acc2.log" 2>&1 ||
  fail "micro-batch 2: $(tail -2 "$TMP/acc2.log")"
l8=$(grep -o '"train_loss": [0-9.]*' "$TMP/acc8/metrics.jsonl" | awk '{printf "%.4f ", $2}')
l2=$(grep -o '"train_loss": [0-9.]*' "$TMP/acc2/metrics.jsonl" | awk '{printf "%.4f ", $2}')
if [ -n "$l8" ] && [ "$l8" = "$l2" ]; then pass; else fail "accumulated losses differ: [$l8] vs [$l2]"; fi

# 2c. real instruction data (Alpaca: prompt tokens masked), a separate --val
# file, and --pack (micro-batches filled by tokens): the validation loss falls
python3 - "$CTUNE_SHARED/data/alpaca/alpaca_5000.json" "$TMP" <<'PYEOF'
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["output"].strip()]
with open(sys.argv[2] + "/alpaca_train.jsonl", "w") as f:
    for r in rows[:400]: f.write(json.dumps(r) + "\n")
with open(sys.argv[2] + "/alpaca_val.jsonl", "w") as f:
    for r in rows[400:440]: f.write(json.dumps(r) + "\n")
PYEOF
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --data "$TMP/alpaca_train.jsonl" --val "$TMP/alpaca_val.jsonl" --pack \
     --max-len 128 --batch 16 --micro-batch 4 --method lora --targets all-linear --lr 2e-3 --max-steps 25 -t 2 \
     --no-progress -o "$TMP/alpaca" >"$TMP/alpaca.log" 2>&1; then pass; else fail "alpaca run: $(tail -3 "$TMP/alpaca.log")"; fi
grep -q "examples (alpaca)" "$TMP/alpaca.log" && pass || fail "alpaca format not detected: $(head -3 "$TMP/alpaca.log")"
a1=$(grep -o '"val_loss": [0-9.]*' "$TMP/alpaca/metrics.jsonl" | head -1 | awk '{print $2}')
a2=$(grep -o '"val_loss": [0-9.]*' "$TMP/alpaca/metrics.jsonl" | tail -1 | awk '{print $2}')
echo "alpaca (completions only, packed): val loss $a1 -> $a2"
if awk -v a="$a1" -v b="$a2" 'BEGIN{exit !(b < a - 0.05)}'; then pass; else fail "alpaca val loss $a1 -> $a2"; fi

# 3. full fine-tuning: a Hugging Face directory that ctune loads back
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method full --lr 1e-3 --max-steps 20 -o "$TMP/full" >"$TMP/full.log" 2>&1
then pass; else fail "full run: $(tail -3 "$TMP/full.log")"; fi
if [ -s "$TMP/full/config.json" ] && [ -s "$TMP/full/model.safetensors" ]; then pass; else fail "full: no HF files"; fi
pf=$("$CTUNE" eval "$TMP/full" --tokenizer "$TOK" --data "$TMP/shake.txt" --ctx 64 --stride 64 2>&1 | awk '/^perplexity/{print $2}')
echo "perplexity after 20 full fine-tuning steps: $pf (base $p0)"
if awk -v a="$p0" -v b="$pf" 'BEGIN{exit !(b > 0 && b < a)}'; then pass; else fail "full: perplexity $p0 -> $pf"; fi
# the directory is self-contained (tokenizer.json exported from tok512.bin) and
# transformers continues a prompt with ctune's greedy text
if [ -s "$TMP/full/tokenizer.json" ]; then pass; else fail "full: no tokenizer.json"; fi
"$CTUNE" generate "$TMP/full" -p "Once upon a time" -n 24 2>/dev/null >"$TMP/full_gen.txt" || fail "generate from the HF dir"
if [ -x "$PY" ]; then
  if "$PY" "$CTUNE_ROOT/tests/golden/check_hf_export.py" "$TMP/full" "Once upon a time" 24 "$TMP/full_gen.txt" \
       2>/dev/null; then pass; else fail "transformers does not reproduce ctune's text from the saved directory"; fi
else
  echo "SKIP (part): the Python reference stack is not installed at $PY; transformers check of the saved directory not run"
fi

# 4. early stopping: a learning rate of 0 never improves
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method lora --lr 0 --max-steps 50 --eval-every 2 --patience 2 \
     -o "$TMP/early" >"$TMP/early.log" 2>&1 && grep -q "early stop" "$TMP/early.log"; then pass
else fail "early stopping: $(tail -3 "$TMP/early.log")"; fi

# 5. NaN (injected into step 7's gradient by the trainer's test hook): the run
# stops before the update, names the step and the last good checkpoint, exits
# non-zero, and that checkpoint survives
if CTUNE_FAULT_NAN_STEP=7 "$CTUNE" train "$BIN" "${COMMON[@]}" --method lora --max-steps 20 --save-every 5 \
     -o "$TMP/nan" >"$TMP/nan.log" 2>&1; then fail "a NaN run exited 0"
elif grep -q "step 7: .*stopped before the update; the last good checkpoint is .*checkpoint-5" "$TMP/nan.log"; then pass
else fail "NaN message: $(tail -2 "$TMP/nan.log")"; fi
if [ -s "$TMP/nan/checkpoint-5/state.safetensors" ] && [ ! -e "$TMP/nan/adapter_model.safetensors" ]; then pass
else fail "NaN run: checkpoint-5 missing or a final adapter written"; fi

# 6. bad input
printf '{"text": "a fine row"}\n{"text": 12}\n{"text": "another"}\n' >"$TMP/bad.jsonl"
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --data "$TMP/bad.jsonl" --method lora -o "$TMP/bad" >"$TMP/bad.log" 2>&1
then fail "a malformed row was accepted"
elif grep -q "bad.jsonl:2" "$TMP/bad.log"; then pass; else fail "bad row message: $(cat "$TMP/bad.log")"; fi
if "$CTUNE" train "$BIN" --tokenizer "$TOK" --data "$TMP/bad.jsonl" --skip-bad-rows --method lora --max-steps 1 \
     -o "$TMP/skip" >"$TMP/skip.log" 2>&1; then pass; else fail "--skip-bad-rows: $(tail -2 "$TMP/skip.log")"; fi
if "$CTUNE" train "$BIN" "${COMMON[@]}" --method lora --targets q,nope -o "$TMP/t" >"$TMP/t.log" 2>&1; then
  fail "--targets nope accepted"
elif grep -q "'nope' is not a linear layer" "$TMP/t.log"; then pass; else fail "targets message: $(cat "$TMP/t.log")"; fi
finish
