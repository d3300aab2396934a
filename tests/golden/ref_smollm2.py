#!/usr/bin/env python3
"""Reference outputs for the real SmolLM2-135M-Instruct Q4_1 GGUF, from
Hugging Face transformers (independent of ctune: transformers dequantizes the
GGUF's tensors with gguf-py and runs its own float32 LlamaForCausalLM).

Usage: ref_smollm2.py MODEL.gguf TEXT.txt OUTDIR [--ctx C --stride S]

Writes into OUTDIR:
  chat_<i>.txt      greedy answer (max 48 new tokens, stops at <|im_end|>) to
                    chat prompt i, formatted with the GGUF's chat template
                    (SmolLM2's default system turn), special tokens dropped
  chat_<i>.prompt   the user message
  chat_<i>.ids      the prompt's token ids (template applied), one line
  plain_0.txt       greedy continuation (32 tokens) of a plain-text prompt
  ppl.txt           "PPL NLL_SUM N_SCORED" over TEXT.txt's token ids (read
                    from TEXT.txt.ids, produced by `ctune tokenize`), with
                    ctune's sliding windows (docs/eval.md)
  text_ids.txt      transformers' own ids for TEXT.txt (to compare with ctune's)
"""
import argparse
import math
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

CHATS = [
    "What is the capital of France?",
    "Give me three tips for staying healthy.",
    "Write a haiku about the sea.",
]
PLAIN = "The history of the Roman Empire"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("out")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--stride", type=int, default=256)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    d, f = os.path.split(os.path.abspath(a.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")

    def greedy(ids, n, stop):
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                                 eos_token_id=stop, pad_token_id=stop)
        return tok.decode(out[0][len(ids):], skip_special_tokens=True)

    for i, q in enumerate(CHATS):
        text = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                       add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False).input_ids
        open(f"{a.out}/chat_{i}.prompt", "w").write(q)
        open(f"{a.out}/chat_{i}.ids", "w").write(" ".join(map(str, ids)) + "\n")
        assert ids and ids[-1] != im_end, f"chat prompt {i}: template gave no generation prompt"
        open(f"{a.out}/chat_{i}.txt", "w").write(greedy(ids, 48, im_end) + "\n")  # ctune ends the text with a newline
    ids = tok(PLAIN, add_special_tokens=False).input_ids
    open(f"{a.out}/plain_0.prompt", "w").write(PLAIN)
    open(f"{a.out}/plain_0.txt", "w").write(greedy(ids, 32, None) + "\n")

    # perplexity over ctune's ids (the id comparison is separate: text_ids.txt)
    raw = open(a.text, encoding="utf-8", newline="").read()  # keep the CRLFs
    open(f"{a.out}/text_ids.txt", "w").write(
        " ".join(map(str, tok(raw, add_special_tokens=False).input_ids)) + "\n")
    ids = [int(t) for t in open(a.text + ".ids").read().split()]
    n, C, S = len(ids), a.ctx, a.stride
    nll, scored, prev_end, w = 0.0, 0, 1, 0
    while True:
        s0 = w * S
        e = min(s0 + C, n)
        x = torch.tensor([ids[s0:e]])
        with torch.no_grad():
            logits = model(x).logits[0].double()
        lp = torch.log_softmax(logits, dim=-1)
        for p in range(max(prev_end, s0 + 1), e):  # targets not scored yet
            nll -= lp[p - 1 - s0, ids[p]].item()
            scored += 1
        prev_end = e
        if e >= n:
            break
        w += 1
    # every token but the first scored exactly once, and a sane value
    if scored != n - 1 or not (1.0 < math.exp(nll / scored) < 1e4):
        raise SystemExit(f"ref_smollm2: scored {scored} of {n - 1} targets, nll {nll}: the reference is broken")
    open(f"{a.out}/ppl.txt", "w").write(f"{math.exp(nll / scored):.6f} {nll:.6f} {scored}\n")
    print(f"ref_smollm2: {len(CHATS)} chats, ppl {math.exp(nll / scored):.4f} over {scored} targets "
          f"({n} tokens, ctx {C}, stride {S})")


if __name__ == "__main__":
    sys.exit(main())
