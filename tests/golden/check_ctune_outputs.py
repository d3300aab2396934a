"""The ecosystem loads what ctune's trainer wrote, and computes ctune's logits.

usage: check_ctune_outputs.py REFDIR OUTDIR
REFDIR: gen_train_refs.py's output (base checkpoints <name>/, batch.json).
OUTDIR: written by test_train_ref (CTUNE_TRAIN_OUT_DIR): for name in llama, gpt2
  <name>.ctune_lora/  adapter_config.json + adapter_model.safetensors (PEFT layout)
  <name>.ctune_full/  config.json + model.safetensors (a Hugging Face directory)
  and beside each, <dir>.logits.f32: ctune's logits for the batch's sequences
  (raw float32, the (len, V) blocks concatenated).
Checks, in float32 eval mode: PeftModel.from_pretrained(base, adapter) and
AutoModelForCausalLM.from_pretrained(full) give ctune's logits within TOL
(max |diff| / max |logit|), and load with no missing or unexpected keys.
"""
import json
import sys

import numpy as np
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

TOL = 1e-4


def logits_of(model, seqs):
    out = []
    with torch.no_grad():
        for s in seqs:
            out.append(model(torch.tensor([s["ids"]])).logits[0].float().numpy())
    return np.concatenate(out, 0)


def compare(label, got, path, failures):
    want = np.fromfile(path, dtype="<f4")
    if want.size != got.size:
        failures.append(f"{label}: {path} holds {want.size} floats, expected {got.size}")
        return
    rel = np.abs(got - want.reshape(got.shape)).max() / np.abs(want).max()
    print(f"{label}: max |diff| / max |logit| = {rel:.2e} (tol {TOL})")
    if not rel <= TOL:
        failures.append(f"{label}: relative logit difference {rel:.2e} > {TOL}")


def main():
    ref, out = sys.argv[1], sys.argv[2]
    seqs = json.load(open(f"{ref}/batch.json"))["seqs"]
    failures = []
    for name in ("llama", "gpt2"):
        base = AutoModelForCausalLM.from_pretrained(f"{ref}/{name}", dtype=torch.float32).eval()
        peft_model = PeftModel.from_pretrained(base, f"{out}/{name}.ctune_lora").eval()
        compare(f"{name}: PEFT with ctune's adapter", logits_of(peft_model, seqs),
                f"{out}/{name}.ctune_lora.logits.f32", failures)
        full, info = AutoModelForCausalLM.from_pretrained(f"{out}/{name}.ctune_full", dtype=torch.float32,
                                                          output_loading_info=True)
        bad = [k for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)]
        if bad:
            failures.append(f"{name}: transformers loading ctune's model: {[(k, info[k]) for k in bad]}")
        compare(f"{name}: transformers with ctune's fully fine-tuned model", logits_of(full.eval(), seqs),
                f"{out}/{name}.ctune_full.logits.f32", failures)
    if failures:
        raise SystemExit("check_ctune_outputs: " + "; ".join(failures))


if __name__ == "__main__":
    main()
