#!/usr/bin/env python3
"""tests/golden/check_peft_files.py — checks files written by ctune's C writers
(test_peft with CTUNE_PEFT_OUT_DIR=<dir>) with the Python ecosystem:

  dtypes.safetensors      safetensors.torch.load_file: F32/F16/BF16 dtypes, shapes
                          and exact values; __metadata__ as written.
  model/                  transformers.AutoModelForCausalLM.from_pretrained: no
                          missing / unexpected / mismatched keys, every parameter
                          equals value(name, i); a forward pass runs.
  adapter/                peft.PeftModel.from_pretrained(base, adapter): the config
                          (r, lora_alpha, targets) and every lora_A / lora_B equal
                          value(name, i); merge_and_unload gives W + alpha/r * B @ A.
  cfg_{mistral,qwen2,gpt2,llama_tied}/config.json
                          AutoConfig reads the fields ctune wrote and
                          AutoModelForCausalLM.from_config builds the model.

value(name, i) = ((i * 31 + fnv1a32(name) % 1000) % 201 - 100) / 128 (exact in
every dtype), the formula of tests/unit/test_peft.c. Exit 0 when all pass.
"""
import json
import os
import sys
import warnings

import torch
from safetensors import safe_open
from safetensors.torch import load_file

FAILS = []


def check(cond, what):
    if cond:
        print("ok", what)
    else:
        print("FAIL", what)
        FAILS.append(what)


def fnv1a(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def value(name, shape):
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    v = ((i * 31 + fnv1a(name) % 1000) % 201 - 100).to(torch.float64) / 128.0
    return v.to(torch.float32).reshape(shape)


def check_dtypes(d):
    p = os.path.join(d, "dtypes.safetensors")
    t = load_file(p)
    want = {"f32": (torch.float32, (7, 9)), "f16": (torch.float16, (9, 7)), "bf16": (torch.bfloat16, (1000,))}
    check(sorted(t) == sorted(want), f"dtypes.safetensors names {sorted(t)}")
    for k, (dt, shape) in want.items():
        x = t.get(k)
        check(x is not None and x.dtype == dt and tuple(x.shape) == shape, f"{k}: dtype {dt} shape {shape}")
        if x is not None:
            check(torch.equal(x.float(), value(k, shape)), f"{k}: values exact")
    with safe_open(p, "pt") as f:
        md = f.metadata()
    check(md == {"format": "pt", "writer": 'ctune "test"'}, f"metadata {md}")


def check_model(d):
    import transformers

    mdir = os.path.join(d, "model")
    with open(os.path.join(mdir, "config.json")) as f:
        cfg = json.load(f)
    model, info = transformers.AutoModelForCausalLM.from_pretrained(mdir, output_loading_info=True)
    model.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        check(not info.get(k), f"model: {k} empty ({info.get(k)})")
    c = model.config
    check(type(model).__name__ == "LlamaForCausalLM", f"model class {type(model).__name__}")
    check((c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads,
           c.head_dim, c.vocab_size, c.max_position_embeddings) == (64, 128, 2, 4, 2, 16, 256, 128),
          "model config sizes")
    check(abs(c.rms_norm_eps - 1e-5) < 1e-12 and not c.tie_word_embeddings, "model config eps / untied")
    theta = (getattr(c, "rope_parameters", None) or {}).get("rope_theta", getattr(c, "rope_theta", None))
    check(theta == 10000.0, f"rope theta {theta}")
    sd = model.state_dict()
    raw = load_file(os.path.join(mdir, "model.safetensors"))
    check(sorted(sd) == sorted(raw), "state_dict keys = file keys")
    bad = [k for k, v in sd.items() if not torch.equal(v.float(), value(k, tuple(v.shape)))]
    check(not bad, f"model parameters equal the formula (bad: {bad[:3]})")
    with torch.no_grad():
        out = model(torch.tensor([[1, 5, 7, 9]])).logits
    check(out.shape == (1, 4, 256) and torch.isfinite(out).all().item(), "model forward")
    return mdir, cfg


def check_adapter(d, mdir):
    import peft
    import transformers

    adir = os.path.join(d, "adapter")
    with open(os.path.join(adir, "adapter_config.json")) as f:
        ac = json.load(f)
    check(ac.get("peft_version") == "0.21.2", f"peft_version {ac.get('peft_version')}")
    base = transformers.AutoModelForCausalLM.from_pretrained(mdir)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pm = peft.PeftModel.from_pretrained(base, adir)
    msgs = [str(x.message) for x in w if "missing" in str(x.message).lower() or "unexpected" in str(x.message).lower()]
    check(not msgs, f"PeftModel.from_pretrained without missing/unexpected key warnings {msgs[:2]}")
    pc = pm.peft_config["default"]
    check(pc.peft_type.value == "LORA" and pc.r == 4 and pc.lora_alpha == 8, "peft config r / alpha")
    check(sorted(pc.target_modules) == ["q_proj", "v_proj"], f"target_modules {pc.target_modules}")
    check(pc.task_type == "CAUSAL_LM", f"task_type {pc.task_type}")
    n = 0
    bad = []
    for name, p in pm.named_parameters():
        if "lora_" not in name:
            continue
        n += 1
        fname = name.replace(".default.", ".")
        if not torch.equal(p.detach().float(), value(fname, tuple(p.shape))):
            bad.append(name)
    check(n == 8, f"8 LoRA matrices loaded ({n})")
    check(not bad, f"lora_A / lora_B equal the formula (bad: {bad[:3]})")
    merged = pm.merge_and_unload()
    scale = 8 / 4
    ok = True
    for i in range(2):
        for proj in ("q_proj", "v_proj"):
            stem = f"model.layers.{i}.self_attn.{proj}"
            W = value(f"{stem}.weight", tuple(getattr(merged.model.layers[i].self_attn, proj).weight.shape))
            A = value(f"base_model.model.{stem}.lora_A.weight", (4, 64))
            B = value(f"base_model.model.{stem}.lora_B.weight", (W.shape[0], 4))
            got = getattr(merged.model.layers[i].self_attn, proj).weight.detach()
            ok &= torch.allclose(got, W + scale * (B @ A), rtol=1e-6, atol=1e-5)
    check(ok, "merge_and_unload = W + alpha/r * B @ A")


def check_configs(d):
    import transformers

    exp = {
        "mistral": dict(model_type="mistral", sliding_window=64, tie_word_embeddings=False),
        "qwen2": dict(model_type="qwen2", tie_word_embeddings=True),
        "gpt2": dict(model_type="gpt2", n_embd=64, n_inner=256, n_layer=2, n_head=4, n_positions=128,
                     activation_function="gelu_new", tie_word_embeddings=True),
        "llama_tied": dict(model_type="llama", tie_word_embeddings=True),
    }
    for fam, want in exp.items():
        cdir = os.path.join(d, f"cfg_{fam}")
        c = transformers.AutoConfig.from_pretrained(cdir)
        got = {k: getattr(c, k, None) for k in want}
        check(got == want, f"{fam} config fields {got}")
        m = transformers.AutoModelForCausalLM.from_config(c)
        names = set(n for n, _ in m.named_parameters())
        if fam == "qwen2":
            check("model.layers.0.self_attn.q_proj.bias" in names, "qwen2 has q_proj bias")
            check(all(t == "full_attention" for t in c.layer_types), "qwen2 layer_types full")
        if fam != "gpt2":
            check(c.num_key_value_heads == 2 and c.head_dim == 16, f"{fam} kv heads / head_dim")
        with torch.no_grad():
            out = m(torch.tensor([[1, 2, 3]])).logits
        check(out.shape == (1, 3, 256), f"{fam} model builds and runs")


def main():
    d = sys.argv[1]
    check_dtypes(d)
    mdir, _ = check_model(d)
    check_adapter(d, mdir)
    check_configs(d)
    print(f"check_peft_files: {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
