"""transformers loads a directory ctune's full fine-tuning wrote (model,
config and tokenizer files) and continues a prompt greedily with exactly the
text ctune generates from the same directory.

usage: check_hf_export.py DIR PROMPT N CTUNE_TEXT_FILE
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    d, prompt, n, ctune_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False)
    new = out[0][ids.shape[1]:]
    assert 0 < len(new) <= n, f"check_hf_export: transformers generated {len(new)} tokens (asked for {n})"
    text = tok.decode(new, skip_special_tokens=True)
    want = open(ctune_file, encoding="utf-8").read().rstrip("\n")
    print(f"transformers: {text!r}\nctune:        {want!r}")
    assert text == want, f"check_hf_export: transformers' greedy continuation differs from ctune's ({d})"
    print("same")


if __name__ == "__main__":
    main()
