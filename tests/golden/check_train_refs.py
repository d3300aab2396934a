"""Self-check of gen_train_refs.py's output (run by it at its end; also standalone).

usage: check_train_refs.py OUTDIR     (exit status 1 and one line per failure)

Checks that the files agree with each other, not that PyTorch is right:
  - refs.json has every key the format promises, with 10-long trajectory lists;
  - batch.json has 3 sequences whose targets follow the ids (shifted, -1 at the end,
    the first three of sequence 0 masked);
  - each <name>.lora adapter, loaded with PeftModel.from_pretrained on a fresh base
    from OUTDIR/<name>, reproduces <name>.lora.logits.f32 in eval mode;
  - the gradient and final-parameter files' keys are the HF parameter names / the adapter file's keys,
    with matching shapes; the rslora adapter config says use_rslora.
Leaves out: recomputing gradients or trajectories.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

MODELS = ("llama", "llama_tied", "qwen2", "gpt2")
TRAJ_MODELS = ("llama", "gpt2")
STEPS = 10
V = 300
LOGIT_TOL = 1e-5


def check(out):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    fails = []
    try:
        refs = json.load(open(os.path.join(out, "refs.json")))
        batch = json.load(open(os.path.join(out, "batch.json")))
    except (OSError, ValueError) as e:
        return [f"cannot read refs.json / batch.json: {e}"]
    seqs = batch.get("seqs", [])
    if [len(s["ids"]) for s in seqs] != [7, 12, 5]:
        fails.append("batch.json: sequence lengths are not 7, 12, 5")
    for i, s in enumerate(seqs):
        want = s["ids"][1:] + [-1]
        if i == 0:
            want[0:3] = [-1, -1, -1]
        if s["targets"] != want or not all(0 <= t < V for t in s["ids"]):
            fails.append(f"batch.json: sequence {i} targets/ids malformed")
    for name in MODELS:
        r = refs.get(name)
        if r is None:
            fails.append(f"refs.json: no {name}")
            continue
        kinds = ["full", "lora"] + (["rslora"] if name == "llama" else [])
        for k in kinds:
            if not isinstance(r.get(k, {}).get("loss"), float):
                fails.append(f"refs.json: {name}.{k}.loss missing")
        if name in TRAJ_MODELS:
            for k in ("traj_full", "traj_lora"):
                t = r.get(k, {})
                for f in ("loss", "lr", "grad_norm"):
                    if len(t.get(f, [])) != STEPS:
                        fails.append(f"refs.json: {name}.{k}.{f} is not {STEPS} values")
                if not isinstance(t.get("final_loss"), float):
                    fails.append(f"refs.json: {name}.{k}.final_loss missing")
        base = AutoModelForCausalLM.from_pretrained(os.path.join(out, name), dtype=torch.float32)
        shapes = {pn: tuple(p.shape) for pn, p in base.named_parameters()}
        if name in TRAJ_MODELS:
            ashapes = {n: tuple(v.shape) for n, v in
                       load_file(os.path.join(out, name + ".lora", "adapter_model.safetensors")).items()}
            for k, want in (("traj_full", shapes), ("traj_lora", ashapes)):
                fn = os.path.join(out, f"{name}.{k}.final.safetensors")
                if not os.path.exists(fn):
                    fails.append(f"missing {fn}")
                elif {n: tuple(v.shape) for n, v in load_file(fn).items()} != want:
                    fails.append(f"{fn}: keys/shapes differ from the model / adapter")
        g = load_file(os.path.join(out, name + ".full.grads.safetensors"))
        if {k: tuple(v.shape) for k, v in g.items()} != shapes:
            fails.append(f"{name}.full.grads: keys/shapes differ from named_parameters()")
        for k in kinds[1:]:
            ad = os.path.join(out, f"{name}.{k}")
            a = load_file(os.path.join(ad, "adapter_model.safetensors"))
            g = load_file(os.path.join(out, f"{name}.{k}.grads.safetensors"))
            if {n: tuple(v.shape) for n, v in a.items()} != {n: tuple(v.shape) for n, v in g.items()}:
                fails.append(f"{name}.{k}.grads: keys/shapes differ from the adapter file")
            cfg = json.load(open(os.path.join(ad, "adapter_config.json")))
            if bool(cfg.get("use_rslora")) != (k == "rslora"):
                fails.append(f"{ad}/adapter_config.json: use_rslora is {cfg.get('use_rslora')}")
        pm = PeftModel.from_pretrained(base, os.path.join(out, name + ".lora")).eval()
        with torch.no_grad():
            got = torch.cat([pm(input_ids=torch.tensor([s["ids"]])).logits[0] for s in seqs]).numpy()
        want = np.fromfile(os.path.join(out, name + ".lora.logits.f32"), dtype="<f4")
        if want.size != got.size:
            fails.append(f"{name}.lora.logits.f32: {want.size} floats, expected {got.size}")
        else:
            d = float(np.abs(want.reshape(got.shape) - got).max())
            if d > LOGIT_TOL:
                fails.append(f"{name}.lora: reloaded adapter logits differ by {d:g}")
    return fails


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_train_refs.py OUTDIR")
    f = check(sys.argv[1])
    for x in f:
        print("FAILED:", x, file=sys.stderr)
    print("ok" if not f else f"{len(f)} failure(s)")
    sys.exit(1 if f else 0)
