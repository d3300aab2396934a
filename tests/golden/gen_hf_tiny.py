"""Tiny random-weight Hugging Face checkpoints and their reference logits.

Builds small models with `transformers` (Llama untied/tied, Qwen2 with qkv
biases, Mistral with a sliding window shorter than the test sequence, GPT-2),
saves each with save_pretrained(safe_serialization=True) — plus a Llama in
bfloat16, one in float16 and one sharded (model.safetensors.index.json) — and
runs every model in float32, eval mode, on a fixed token sequence. For the
bf16/f16 checkpoints the reference is the float32 forward of the *rounded*
weights, which is what ctune computes.

Weights are re-initialized with O(1) activations (std 1/sqrt(fan_in)) so that
attention is peaked and a wrong RoPE layout, mask or head mapping moves the
logits by far more than the tolerances.

Some models are also written as GGUF with gguf-py, converted here the way
llama.cpp's convert_hf_to_gguf.py lays them out: GGUF tensor names, Llama q/k
rows permuted so RoPE rotates adjacent pairs, GPT-2's Conv1D weights transposed
to (out, in), a copy of the GPT-2 embedding as output.weight; as F32 (same
reference logits) and as Q8_0 (reference: transformers with the Q8_0-rounded
weights; the tolerance allows for ctune quantizing activations to 8 bits).

usage: gen_hf_tiny.py OUTDIR
Writes OUTDIR/<name>/ (the checkpoint; <name>.gguf for GGUF), OUTDIR/<name>.logits.f32
(raw little-endian float32, (T, V) row-major, all positions) and
OUTDIR/manifest.txt, one model per line:  name tolerance T V id_0 ... id_{T-1}
"""
import os
import sys

import gguf
import numpy as np
import torch
from transformers import (AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

T = 20          # tokens in the test sequence
V = 300         # vocabulary of every tiny model
TOL_F32 = 1e-4  # max |logit difference|, float32 weights
TOL_HALF = 1e-4 # bf16/f16 weights (reference computes in f32 from the same rounded values)
TOL_Q8_REL = 0.03  # Q8_0 weights: max |dlogit| / max |logit|; the decode kernels round
                   # activations to 8 bits (as llama.cpp does), the batched ones do not


def logits_vs_file(lg, path, what, bad, tol=1e-5):
    """Compare logits lg (numpy) with ctune's raw f32 file at path: print the
    difference relative to the largest |logit| and add to bad when over tol."""
    want = np.fromfile(path, dtype=np.float32).reshape(lg.shape)
    err = float(np.abs(lg - want).max() / np.abs(want).max())
    print(f"{what}: rel {err:.2e}")
    if not err <= tol:
        bad.append(f"{what}: rel {err:.2e} > {tol:g}")
    return err


def reinit(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                fan_in = p.shape[1]
                if "wte" in name or "wpe" in name or "embed" in name:
                    fan_in = 1
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif "norm" in name or "ln_" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:  # biases
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def llama_cfg(**kw):
    base = dict(hidden_size=64, intermediate_size=176, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=V, max_position_embeddings=128, rms_norm_eps=1e-5,
                rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    base.update(kw)
    return base


def build(name, seed):
    torch.manual_seed(seed)
    if name.startswith("llama_tied"):
        m = LlamaForCausalLM(LlamaConfig(**llama_cfg(num_hidden_layers=2, tie_word_embeddings=True)))
    elif name.startswith("llama"):
        m = LlamaForCausalLM(LlamaConfig(**llama_cfg()))
    elif name == "qwen2":
        m = Qwen2ForCausalLM(Qwen2Config(**llama_cfg(num_hidden_layers=2, tie_word_embeddings=True,
                                                     rope_theta=1000000.0, rms_norm_eps=1e-6)))
    elif name == "mistral":
        m = MistralForCausalLM(MistralConfig(**llama_cfg(num_hidden_layers=2, sliding_window=8)))
    elif name == "gpt2":
        m = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=V, n_positions=64,
                                       bos_token_id=0, eos_token_id=0))
    else:
        raise ValueError(name)
    return reinit(m, seed).eval()


# name -> (seed, saved dtype, shard size)
MODELS = {
    "llama": (1, torch.float32, None),
    "llama_tied": (2, torch.float32, None),
    "qwen2": (3, torch.float32, None),
    "mistral": (4, torch.float32, None),
    "gpt2": (5, torch.float32, None),
    "llama_bf16": (6, torch.bfloat16, None),
    "llama_f16": (7, torch.float16, None),
    "llama_sharded": (8, torch.float32, "60KB"),
}


# ---- GGUF conversion (gguf-py writer) ------------------------------------------

def permute_rope(w, n_head):
    """HF rotate_half rows -> adjacent pairs: within each head, row 2i takes
    old row i and row 2i+1 old row i + HS/2 (llama.cpp's LlamaModel.permute)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(name, m):
    """(gguf name, float32 array in (out, in) order, quantizable) for model m."""
    sd = {k: v.detach().float().numpy() for k, v in m.state_dict().items()}
    out = []
    if name == "gpt2":
        c = m.config
        out += [("token_embd.weight", sd["transformer.wte.weight"], True),
                ("position_embd.weight", sd["transformer.wpe.weight"], False),
                ("output_norm.weight", sd["transformer.ln_f.weight"], False),
                ("output_norm.bias", sd["transformer.ln_f.bias"], False),
                ("output.weight", sd["transformer.wte.weight"], True)]
        for i in range(c.n_layer):
            p, b = f"transformer.h.{i}.", f"blk.{i}."
            for hf, gg in [("ln_1", "attn_norm"), ("ln_2", "ffn_norm")]:
                out += [(b + gg + ".weight", sd[p + hf + ".weight"], False), (b + gg + ".bias", sd[p + hf + ".bias"], False)]
            for hf, gg in [("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"),
                           ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")]:
                out += [(b + gg + ".weight", sd[p + hf + ".weight"].T.copy(), True),  # Conv1D (in, out) -> (out, in)
                        (b + gg + ".bias", sd[p + hf + ".bias"], False)]
        return out
    c = m.config
    out += [("token_embd.weight", sd["model.embed_tokens.weight"], True),
            ("output_norm.weight", sd["model.norm.weight"], False)]
    if not c.tie_word_embeddings:
        out.append(("output.weight", sd["lm_head.weight"], True))
    perm = name != "qwen2"  # GGUF llama: adjacent pairs; GGUF qwen2 keeps rotate_half
    for i in range(c.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if perm:
            q, k = permute_rope(q, c.num_attention_heads), permute_rope(k, c.num_key_value_heads)
        out += [(b + "attn_norm.weight", sd[p + "input_layernorm.weight"], False),
                (b + "attn_q.weight", q, True), (b + "attn_k.weight", k, True),
                (b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"], True),
                (b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"], True),
                (b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"], False),
                (b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"], True),
                (b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"], True),
                (b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"], True)]
        if name == "qwen2":
            for x in "qkv":
                out.append((b + f"attn_{x}.bias", sd[p + f"self_attn.{x}_proj.bias"], False))
    return out


def write_gguf(path, name, m, qtype):
    arch = "gpt2" if name == "gpt2" else ("qwen2" if name == "qwen2" else "llama")
    w = gguf.GGUFWriter(path, arch)
    c = m.config
    if arch == "gpt2":
        w.add_context_length(c.n_positions)
        w.add_embedding_length(c.n_embd)
        w.add_block_count(c.n_layer)
        w.add_feed_forward_length(4 * c.n_embd)
        w.add_head_count(c.n_head)
        w.add_layer_norm_eps(c.layer_norm_epsilon)
    else:
        w.add_context_length(c.max_position_embeddings)
        w.add_embedding_length(c.hidden_size)
        w.add_block_count(c.num_hidden_layers)
        w.add_feed_forward_length(c.intermediate_size)
        w.add_head_count(c.num_attention_heads)
        w.add_head_count_kv(c.num_key_value_heads)
        w.add_layer_norm_rms_eps(c.rms_norm_eps)
        w.add_rope_freq_base(float(c.rope_parameters["rope_theta"]))
    for tname, arr, quantizable in gguf_tensors(name, m):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if qtype is not None and quantizable and arr.ndim == 2 and arr.shape[1] % 32 == 0:
            w.add_tensor(tname, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(tname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def q8_round_model(m):
    """Replace every 2-D weight (in-features a multiple of 32) by its Q8_0 round trip,
    in the (out, in) orientation the GGUF file stores."""
    q = gguf.GGMLQuantizationType.Q8_0
    with torch.no_grad():
        for pname, p in m.named_parameters():
            if p.dim() != 2 or "wpe" in pname:  # position_embd stays F32 in the file
                continue
            a = p.detach().float().numpy()
            conv1d = "c_attn" in pname or "c_proj" in pname or "c_fc" in pname
            a = a.T.copy() if conv1d else a
            if a.shape[1] % 32:
                continue
            r = gguf.quants.dequantize(gguf.quants.quantize(np.ascontiguousarray(a), q), q).reshape(a.shape)
            p.copy_(torch.from_numpy(r.T.copy() if conv1d else r))
    return m


def reference(m, ids):
    with torch.no_grad():
        logits = m(torch.tensor(ids)[None]).logits[0].float().numpy()
    assert logits.shape == (T, V)
    return logits


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    ids = np.random.default_rng(1234).integers(3, V, size=T)
    lines = []
    for name, (seed, dtype, shard) in MODELS.items():
        m = build(name, seed)
        d = os.path.join(out, name)
        kw = {"max_shard_size": shard} if shard else {}
        if dtype != torch.float32:
            m = m.to(dtype)
        m.save_pretrained(d, safe_serialization=True, **kw)
        # reference: the saved checkpoint reloaded in float32 (bf16/f16 weights
        # upcast exactly; buffers such as RoPE's inv_freq recomputed in float32)
        m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        logits = reference(m, ids)
        logits.astype("<f4").tofile(os.path.join(out, name + ".logits.f32"))
        tol = TOL_F32 if dtype == torch.float32 else TOL_HALF
        lines.append(f"{name} {tol:g} {T} {V} " + " ".join(str(int(i)) for i in ids))
        print(f"{name}: {sum(p.numel() for p in m.parameters())} params, dtype {dtype}, "
              f"logit range [{logits.min():.2f}, {logits.max():.2f}]")
    # GGUF conversions: F32 (same logits as the HF checkpoint) and Q8_0
    for name, qtype in [("llama", None), ("llama_tied", None), ("qwen2", None), ("gpt2", None),
                        ("llama", gguf.GGMLQuantizationType.Q8_0), ("gpt2", gguf.GGMLQuantizationType.Q8_0)]:
        m = build(name, MODELS[name][0])
        tag = "gguf_" + name + ("_q8_0" if qtype else "") + ".gguf"
        write_gguf(os.path.join(out, tag), name, m, qtype)
        if qtype:
            m = q8_round_model(m)
        logits = reference(m, ids)
        logits.astype("<f4").tofile(os.path.join(out, tag + ".logits.f32"))
        tol = TOL_Q8_REL * float(np.abs(logits).max()) if qtype else TOL_F32
        lines.append(f"{tag} {tol:.4g} {T} {V} " + " ".join(str(int(i)) for i in ids))
        print(f"{tag}: GGUF {'Q8_0' if qtype else 'F32'}, tolerance {tol:.3g}")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
