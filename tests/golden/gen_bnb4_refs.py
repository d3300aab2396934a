#!/usr/bin/env python3
"""tests/golden/gen_bnb4_refs.py — references for tests/e2e/test_bnb4.sh:
Hugging Face bitsandbytes 4-bit checkpoints made by transformers itself.

  gen OUT     tiny random Llama and GPT-2 models in f32 (OUT/llama_f32,
              OUT/gpt2_f32), each quantized by transformers with
              BitsAndBytesConfig(load_in_4bit=True, ...) on the CPU and saved
              with save_pretrained (OUT/<case>), a LoRA adapter for the Llama
              (OUT/lora), and reference logits:
                <case>.logits.bin  transformers' 4-bit model, exact f32 path
                                   (see below), f32 (T, V) for OUT/ids.bin
              plus OUT/cases.txt ("name dir logits") for test_bnb4.
  check OUT   after ctune wrote OUT/ctune_<case> (`ctune quantize` of the
              f32 model), OUT/merged (`ctune merge` of OUT/lora over
              OUT/llama_nf4_dq) and OUT/merged_gpt2 (OUT/lora_gpt2 over
              OUT/gpt2_nf4_dq): every tensor of ctune's file byte-identical
              to transformers' (codes, absmax, nested, maps, quant-state
              JSON, plain tensors) and the same quantization_config; transformers
              loads ctune's dirs and gives the same logits as from its own;
              the merged dir's logits equal the dequantized base + LoRA merged
              in torch (f32 tolerance).
  generate DIR PROMPT N   greedy continuation (N tokens) by transformers'
              4-bit model in DIR (for a dir ctune quantized from a GGUF file).

bitsandbytes 0.50.2 on a CPU with AVX512-BF16 (this one: Zen 4) repacks a
4-bit weight at its first inference call and runs a kernel that reads absmax
rounded to bf16 (`_convert_weight_packed_for_cpu`); its logits differ from an
f32 product of the dequantized weights by ~1e-3 relative. With
`support_avx512bf16_for_cpu = False` on every Linear4bit it runs
`gemm_4bit` = dequantize_4bit + an f32 matmul, which equals the f32 model
with the dequantized weights exactly (0 difference, checked here): that is the
reference (TOL named in test_bnb4.c). The default path's difference is
printed for the record. Models are saved before any forward (the repacking
changes the in-memory layout, and a save after it has to undo it).
"""
import json
import os
import struct
import sys

import torch

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import bitsandbytes as bnb  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from transformers import (AutoModelForCausalLM, BitsAndBytesConfig, GPT2Config,  # noqa: E402
                          GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM)

torch.manual_seed(1234)
torch.set_num_threads(1)

CASES = {  # name: (source, quant type, double quant)
    "llama_nf4_dq": ("llama_f32", "nf4", True),
    "llama_fp4": ("llama_f32", "fp4", False),
    "gpt2_nf4_dq": ("gpt2_f32", "nf4", True),
    "gpt2_fp4": ("gpt2_f32", "fp4", False),
}
IDS = [1, 17, 42, 99, 3, 250, 7, 128, 64, 5, 200, 11]


def exact_path(m):
    for mod in m.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
    return m


def logits(m):
    with torch.no_grad():
        return m(torch.tensor([IDS])).logits[0].float()


def load4(d, exact=True):
    m = AutoModelForCausalLM.from_pretrained(d, device_map="cpu", dtype=torch.float32)
    return exact_path(m) if exact else m


def save_bin(path, t):
    with open(path, "wb") as f:
        f.write(t.contiguous().numpy().astype("float32").tobytes())


def dequantized_f32(src, m4):
    """The f32 model of src with every 4-bit weight replaced by its exact dequantization."""
    m = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    mods = dict(m.named_modules())
    with torch.no_grad():
        for n, mod in m4.named_modules():
            if isinstance(mod, bnb.nn.Linear4bit):
                w = F.dequantize_4bit(mod.weight.data, mod.weight.quant_state).float()
                tgt = mods[n]
                # GPT-2's Conv1D stores (in, out); transformers quantized its transpose
                tgt.weight.copy_(w.t() if type(tgt).__name__ == "Conv1D" else w)
    return m


def gen(out):
    os.makedirs(out, exist_ok=True)
    llama = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, vocab_size=256,
                                         max_position_embeddings=128, bos_token_id=1, eos_token_id=2))
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=256, n_positions=64,
                                      bos_token_id=1, eos_token_id=2))
    for m in (llama, gpt2):  # weights not all near zero, norms not all one
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.add_(torch.randn_like(p) * (0.02 if p.dim() > 1 else 0.1))
    llama.float().save_pretrained(os.path.join(out, "llama_f32"))
    gpt2.float().save_pretrained(os.path.join(out, "gpt2_f32"))
    with open(os.path.join(out, "ids.bin"), "wb") as f:
        f.write(struct.pack("<%di" % len(IDS), *IDS))
    lines = []
    for name, (src, qt, dq) in CASES.items():
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=qt, bnb_4bit_use_double_quant=dq,
                               bnb_4bit_compute_dtype=torch.float32)
        m4 = AutoModelForCausalLM.from_pretrained(os.path.join(out, src), quantization_config=q,
                                                  device_map="cpu", dtype=torch.float32)
        m4.save_pretrained(os.path.join(out, name))
        ref = logits(exact_path(m4))
        deq = logits(dequantized_f32(os.path.join(out, src), m4))
        d_exact = (ref - deq).abs().max().item()
        if d_exact != 0.0:
            raise SystemExit(f"{name}: transformers' exact 4-bit path differs from the dequantized f32 model "
                             f"by {d_exact}")
        fast = logits(load4(os.path.join(out, name), exact=False))
        print(f"{name}: bnb default CPU path vs exact f32 path: max |diff| {(fast - ref).abs().max().item():.3g} "
              f"(max |logit| {ref.abs().max().item():.3g})")
        save_bin(os.path.join(out, name + ".logits.bin"), ref)
        lines.append(f"{name} {os.path.join(out, name)} {os.path.join(out, name + '.logits.bin')}")
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    # a LoRA adapter (non-zero B) for the Llama: q, v, down
    from peft import LoraConfig, get_peft_model
    base = AutoModelForCausalLM.from_pretrained(os.path.join(out, "llama_f32"), dtype=torch.float32)
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                         init_lora_weights=False, lora_dropout=0.0))
    pm.save_pretrained(os.path.join(out, "lora"))
    # and one for GPT-2: the fused c_attn (q/k/v row views of one 4-bit matrix) and c_fc
    base = AutoModelForCausalLM.from_pretrained(os.path.join(out, "gpt2_f32"), dtype=torch.float32)
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
                                         init_lora_weights=False, lora_dropout=0.0))
    pm.save_pretrained(os.path.join(out, "lora_gpt2"))


def st_tensors(path):
    """name -> (dtype, shape, raw bytes) of a safetensors file."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items()}


def check(out):
    bad = []
    for name in CASES:
        ours, theirs = os.path.join(out, "ctune_" + name), os.path.join(out, name)
        a, b = st_tensors(os.path.join(ours, "model.safetensors")), st_tensors(os.path.join(theirs, "model.safetensors"))
        if set(a) != set(b):
            bad.append(f"{name}: tensor names differ: only ctune {sorted(set(a) - set(b))[:4]}, only transformers "
                       f"{sorted(set(b) - set(a))[:4]}")
        diff = [k for k in sorted(set(a) & set(b)) if a[k] != b[k]]
        if diff:
            k = diff[0]
            bad.append(f"{name}: {len(diff)} tensors differ, first {k}: {a[k][:2]} vs {b[k][:2]}"
                       + (f" {a[k][2][:160]!r} vs {b[k][2][:160]!r}" if "quant_state" in k else ""))
        same_file = open(os.path.join(ours, "model.safetensors"), "rb").read() == \
            open(os.path.join(theirs, "model.safetensors"), "rb").read()
        qa = json.load(open(os.path.join(ours, "config.json")))["quantization_config"]
        qb = json.load(open(os.path.join(theirs, "config.json")))["quantization_config"]
        if qa != qb:
            bad.append(f"{name}: quantization_config differs: {qa} vs {qb}")
        la, lb = logits(load4(ours)), logits(load4(theirs))
        d = (la - lb).abs().max().item()
        if d != 0.0:
            bad.append(f"{name}: transformers' logits from ctune's dir differ from its own by {d}")
        print(f"{name}: {len(a)} tensors, {len(diff)} differ; model.safetensors byte-identical: {same_file}; "
              f"logits from ctune's dir vs transformers' own: max |diff| {d}")
    # merge: dequantized NF4 base + LoRA, merged in torch
    from peft import PeftModel
    for merged, q4, src, lora in (("merged", "llama_nf4_dq", "llama_f32", "lora"),
                                  ("merged_gpt2", "gpt2_nf4_dq", "gpt2_f32", "lora_gpt2")):
        base = dequantized_f32(os.path.join(out, src), load4(os.path.join(out, q4)))
        base_logits = logits(base)  # before PEFT merges into base in place
        ref = logits(PeftModel.from_pretrained(base, os.path.join(out, lora)).merge_and_unload())
        got = logits(AutoModelForCausalLM.from_pretrained(os.path.join(out, merged), dtype=torch.float32))
        d, mx = (got - ref).abs().max().item(), ref.abs().max().item()
        no_lora = (base_logits - ref).abs().max().item()
        print(f"{merged}: ctune merge of {lora} over {q4} (loaded by transformers) vs dequantized base + LoRA in "
              f"torch: max |diff| {d:.3g} (max |logit| {mx:.3g}; the adapter itself moves logits by {no_lora:.3g})")
        if not d <= 1e-5 * max(1.0, mx):
            bad.append(f"{merged}: logits differ by {d} (tolerance 1e-5 * max(1, {mx}))")
        if not no_lora > 100 * d:
            bad.append(f"{merged}: the adapter's effect ({no_lora}) is not well above the difference ({d})")
        if any(v[0] != "F32" for v in st_tensors(os.path.join(out, merged, "model.safetensors")).values()):
            bad.append(f"{merged}: the merged model has non-F32 tensors")
    if bad:
        raise SystemExit("\n".join(bad))


def generate(d, prompt, n):
    """Greedy text of transformers' 4-bit model (exact path) in d: the prompt and n new tokens."""
    from transformers import AutoTokenizer
    m, t = load4(d), AutoTokenizer.from_pretrained(d)
    ids = t(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = m.generate(ids, max_new_tokens=n, do_sample=False)
    sys.stdout.write(t.decode(out[0][ids.shape[1]:]))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "generate":
        generate(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check"):
        raise SystemExit("usage: gen_bnb4_refs.py gen|check OUT | generate DIR PROMPT N")
    else:
        (gen if sys.argv[1] == "gen" else check)(sys.argv[2])
