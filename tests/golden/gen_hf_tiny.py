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

usage: gen_hf_tiny.py OUTDIR
Writes OUTDIR/<name>/ (the checkpoint), OUTDIR/<name>.logits.f32 (raw
little-endian float32, (T, V) row-major, all positions) and OUTDIR/manifest.txt,
one model per line:  name tolerance T V id_0 ... id_{T-1}
"""
import os
import sys

import numpy as np
import torch
from transformers import (AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

T = 20          # tokens in the test sequence
V = 300         # vocabulary of every tiny model
TOL_F32 = 1e-4  # max |logit difference|, float32 weights
TOL_HALF = 1e-4 # bf16/f16 weights (reference computes in f32 from the same rounded values)


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
        with torch.no_grad():
            logits = m(torch.tensor(ids)[None]).logits[0].float().numpy()
        assert logits.shape == (T, V)
        logits.astype("<f4").tofile(os.path.join(out, name + ".logits.f32"))
        tol = TOL_F32 if dtype == torch.float32 else TOL_HALF
        lines.append(f"{name} {tol:g} {T} {V} " + " ".join(str(int(i)) for i in ids))
        print(f"{name}: {sum(p.numel() for p in m.parameters())} params, dtype {dtype}, "
              f"logit range [{logits.min():.2f}, {logits.max():.2f}]")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
