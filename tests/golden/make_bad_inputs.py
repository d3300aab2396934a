"""Write a small valid Llama-shaped Hugging Face directory and corrupt copies of it,
for tests/e2e/test_bad_input.sh. Uses the reference `safetensors` writer (NumPy API)
so the valid directory is what the ecosystem produces.

usage: make_bad_inputs.py OUTDIR
Each OUTDIR/<case>/ is a model directory; OUTDIR/cases.tsv lists
case<TAB>expected words in the error message (a substring naming the fault).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)

C, H, L, NH, KV, V = 32, 64, 2, 4, 2, 64
HS = C // NH
cfg = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": C,
    "intermediate_size": H, "num_hidden_layers": L, "num_attention_heads": NH,
    "num_key_value_heads": KV, "vocab_size": V, "max_position_embeddings": 128,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
}


def tensors():
    t = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,), "lm_head.weight": (V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = (C,)
        t[p + "post_attention_layernorm.weight"] = (C,)
        t[p + "self_attn.q_proj.weight"] = (NH * HS, C)
        t[p + "self_attn.k_proj.weight"] = (KV * HS, C)
        t[p + "self_attn.v_proj.weight"] = (KV * HS, C)
        t[p + "self_attn.o_proj.weight"] = (C, NH * HS)
        t[p + "mlp.gate_proj.weight"] = (H, C)
        t[p + "mlp.up_proj.weight"] = (H, C)
        t[p + "mlp.down_proj.weight"] = (C, H)
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in t.items()}


W = tensors()
cases = []


def make(name, config=cfg, weights=W, expect=""):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if config is not None:
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config, indent=2))
    if weights is not None:
        save_file(weights, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cases.append((name, expect))
    return d


def patch(d, fn):
    p = os.path.join(d, "model.safetensors")
    b = bytearray(open(p, "rb").read())
    new = fn(b)
    # a patch that changes nothing would make its case pass for no reason
    # (bad_header_json once replaced '{' with '{')
    assert bytes(new) != bytes(b), f"make_bad_inputs: the patch for {d} leaves the file unchanged"
    open(p, "wb").write(bytes(new))


make("valid", expect="")
make("config_malformed", config='{"model_type": "llama", "hidden_size": 32,,}', expect="config.json")
make("config_unknown_type", config=dict(cfg, model_type="bert"), expect="bert")
make("config_missing_field", config={k: v for k, v in cfg.items() if k != "num_hidden_layers"},
     expect="num_hidden_layers")
make("config_shape_mismatch", config=dict(cfg, intermediate_size=96), expect="gate_proj")
make("missing_tensor", weights={k: v for k, v in W.items() if "layers.1.mlp.down_proj" not in k},
     expect="layers.1.mlp.down_proj")
make("no_weights", weights=None, expect="safetensors")
d = make("truncated", expect="model.safetensors")
patch(d, lambda b: b[: len(b) - 1000])
d = make("header_too_long", expect="model.safetensors")
patch(d, lambda b: struct.pack("<Q", len(b) * 4) + b[8:])
d = make("bad_header_json", expect="model.safetensors")
patch(d, lambda b: b[:8] + b"x" + b[9:])  # the header's opening brace -> not JSON


def rewrite_header(fn):
    """Return a patcher that edits the parsed header dict and re-serializes it
    (padded to a multiple of 8); the data buffer is kept as it is."""
    def run(b):
        n = struct.unpack("<Q", b[:8])[0]
        hdr = json.loads(bytes(b[8 : 8 + n]))
        fn(hdr)
        h = json.dumps(hdr, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        return struct.pack("<Q", len(h)) + h + b[8 + n :]
    return run


def set_field(name, key, value):
    def fn(hdr):
        hdr[name][key] = value(hdr[name][key]) if callable(value) else value
    return fn


d = make("unknown_dtype", expect="model.norm.weight")
patch(d, rewrite_header(set_field("model.norm.weight", "dtype", "Q7")))
d = make("offsets_out_of_range", expect="model.norm.weight")
patch(d, rewrite_header(set_field("model.norm.weight", "data_offsets", lambda e: [e[0] + 10**9, e[1] + 10**9])))
d = make("size_overflow", expect="model.norm.weight")
patch(d, rewrite_header(set_field("model.norm.weight", "shape", [2**40, 2**40])))
d = make("offsets_overlap", expect="model.safetensors")
patch(d, rewrite_header(set_field("model.norm.weight", "data_offsets", lambda e: [e[0] - 4, e[1] - 4])))

# the baseline is good (safetensors reads it back unchanged), and every other case differs from it
back = load_file(os.path.join(out, "valid", "model.safetensors"))
assert set(back) == set(W) and all(np.array_equal(back[k], W[k]) for k in W), "make_bad_inputs: the valid case is not"
good = {f: open(os.path.join(out, "valid", f), "rb").read() for f in ("config.json", "model.safetensors")}
for name, _ in cases[1:]:
    same = [f for f in good if os.path.exists(os.path.join(out, name, f))
            and open(os.path.join(out, name, f), "rb").read() == good[f]]
    assert len(same) < 2, f"make_bad_inputs: case {name} is identical to the valid one"

with open(os.path.join(out, "cases.tsv"), "w") as f:
    for name, expect in cases:
        f.write(f"{name}\t{expect}\n")
print(f"wrote {len(cases)} cases to {out}")
