"""Independent reference for ctune's trainer: losses, gradients and short AdamW
trajectories from PyTorch + transformers + PEFT, for full fine-tuning and LoRA.

usage: gen_train_refs.py OUTDIR          (exits non-zero if a self-check fails)

Everything is float32 on the CPU, deterministic (torch.use_deterministic_algorithms),
models in train() mode with every dropout probability 0 (attention_dropout /
resid_pdrop / embd_pdrop / attn_pdrop = 0, lora_dropout = 0) and the eager
attention implementation. What it leaves out: padding, attention masks, batches
larger than one sequence per forward, gradient accumulation, bf16.

Models (V = 300 everywhere; weights re-initialised with gen_hf_tiny.reinit so that
activations are O(1)):
  llama       LlamaForCausalLM  hidden 32, intermediate 64, 2 layers, 4 heads,
              2 KV heads (GQA), head_dim 8, rope_theta 1e4, max_pos 64, rms eps 1e-5, untied
  llama_tied  the same with tie_word_embeddings=True
  qwen2       Qwen2ForCausalLM  the same sizes, q/k/v biases, tied, rms eps 1e-6
  gpt2        GPT2LMHeadModel   n_embd 32, 2 layers, 4 heads, n_positions 64 (wte tied)

Batch, the same for every model, OUTDIR/batch.json:
  {"seqs": [{"ids": [...], "targets": [...]}, ...]}   3 sequences, lengths 7, 12, 5,
  ids in [0, 300); targets[i] = ids[i+1] for i < len-1, -1 at the last position, and in
  the first sequence targets[0..2] = -1 as well (a masked prompt).
Loss: sum over all positions with target >= 0 of cross_entropy(logits[i], target[i]),
divided by the number of such positions in the whole batch (23 - 3 - 3 = 17 here).
Each sequence is its own forward (batch size 1, positions 0..len-1, no padding).

Files in OUTDIR:
  batch.json                        the batch above
  refs.json                         {name: {"n_params": int,   (tied weights counted once)
                                             "full": {"loss": f},
                                             "lora": {"loss": f, "n_trainable": int},
                                             "rslora": {"loss": f, "n_trainable": int}  (llama only)
                                             "traj_full": T, "traj_lora": T  (llama, gpt2)}}
                                    T = {"loss": [10], "lr": [10], "grad_norm": [10],
                                         "final_loss": f}
  <name>/                           HF checkpoint (save_pretrained, safetensors, f32)
  <name>.full.grads.safetensors     d loss / d p for every p in model.named_parameters();
                                    keys are HF parameter names, shapes those of the
                                    parameters (GPT-2 Conv1D weights are (in, out)). A tied
                                    weight appears once, under the embedding's name
                                    (model.embed_tokens.weight / transformer.wte.weight); its
                                    gradient is the sum of the embedding and lm_head parts.
  <name>.lora/                      PEFT adapter (adapter_config.json, adapter_model.safetensors)
                                    r=4, lora_alpha=8 (scale alpha/r = 2), targets
                                    q,k,v,o,gate,up,down_proj (llama/qwen2) or c_attn, c_proj,
                                    c_fc (gpt2: c_proj = attn.c_proj AND mlp.c_proj,
                                    fan_in_fan_out=True). lora_A (r, in) ~ N(0, 1/in),
                                    lora_B (out, r) ~ N(0, 0.01) instead of PEFT's zero B.
  <name>.lora.grads.safetensors     gradients of the lora_A/lora_B tensors, keys exactly as in
                                    adapter_model.safetensors, e.g.
                                    base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
                                    (PEFT's in-memory name has ".default" before ".weight";
                                    the file does not)
  <name>.lora.logits.f32            eval-mode logits of base + adapter, raw little-endian
                                    float32, the 3 sequences' (len, 300) row-major blocks
                                    concatenated in order (24 * 300 floats)
  llama.rslora/, llama.rslora.grads.safetensors
                                    the same with use_rslora=True (scale alpha/sqrt(r) = 4),
                                    same A/B values as llama.lora
  <name>.traj_full.final.safetensors, <name>.traj_lora.final.safetensors  (llama, gpt2)
                                    trainable parameters after 10 AdamW steps (full: all HF
                                    params, HF names; LoRA: adapter tensors, PEFT file names)

Trajectory (traj_full starts from OUTDIR/<name>, traj_lora from OUTDIR/<name>.lora loaded
with PeftModel.from_pretrained(is_trainable=True)): torch.optim.AdamW(foreach=True,
betas (0.9, 0.999), eps 1e-8, lr 1e-3 full / 1e-2 LoRA), two parameter groups:
ndim >= 2 (embeddings included) with weight_decay 0.01, ndim < 2 (biases, norm weights)
with 0 (every LoRA tensor is 2-D); schedule transformers.get_cosine_schedule_with_warmup(
num_warmup_steps=2, num_training_steps=10): lr_k = base * k/2 for k < 2, else
base * 0.5 * (1 + cos(pi * (k-2)/8)); so lr_0 = 0 (step 0 changes nothing but Adam's
moments and the step count; decoupled decay is lr-scaled, so also nothing). Each step k:
zero grads; loss over the batch; backward; record loss, lr_k and the pre-clip global
L2 norm of all trainable gradients (clip_grad_norm_'s return value); clip_grad_norm_(max
1.0: every gradient times min(1, 1/(norm+1e-6))); optimizer.step() (torch AdamW: p *= 1 - lr*wd,
then the Adam update with bias corrections 1-beta^t, t counting from 1 at step 0, so the
lr-0 step 0 still advances m, v and t); scheduler.step(). final_loss is the loss after the
10th step. adapter_config.json's target_modules is a list in set order (it can change
between runs); read it as a set. Everything else is bit-identical run to run.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, get_cosine_schedule_with_warmup)
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_tiny import V, llama_cfg, reinit  # noqa: E402
import check_train_refs  # noqa: E402

MODELS = {"llama": 11, "llama_tied": 12, "qwen2": 13, "gpt2": 14}  # name -> weight seed
TRAJ_MODELS = ("llama", "gpt2")
LENS = (7, 12, 5)
LORA_R, LORA_ALPHA = 4, 8
TARGETS_LLAMA = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGETS_GPT2 = ["c_attn", "c_proj", "c_fc"]
STEPS, WARMUP = 10, 2


def build(name, seed):
    torch.manual_seed(seed)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8, max_position_embeddings=64, attention_dropout=0.0)
    if name == "llama":
        m = LlamaForCausalLM(LlamaConfig(**llama_cfg(**small)))
    elif name == "llama_tied":
        m = LlamaForCausalLM(LlamaConfig(**llama_cfg(tie_word_embeddings=True, **small)))
    elif name == "qwen2":
        m = Qwen2ForCausalLM(Qwen2Config(**llama_cfg(tie_word_embeddings=True, rms_norm_eps=1e-6, **small)))
    elif name == "gpt2":
        m = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=V, n_positions=64,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                       bos_token_id=0, eos_token_id=0))
    else:
        raise ValueError(name)
    return reinit(m, seed)


def load_base(d):
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    for mod in m.modules():  # belt and braces: no dropout anywhere
        if isinstance(mod, torch.nn.Dropout):
            assert mod.p == 0.0, f"dropout {mod.p} in {d}"
    return m.train()


def make_batch():
    g = torch.Generator().manual_seed(4321)
    seqs = []
    for si, n in enumerate(LENS):
        ids = torch.randint(0, V, (n,), generator=g).tolist()
        tg = ids[1:] + [-1]
        if si == 0:
            tg[0:3] = [-1, -1, -1]
        seqs.append({"ids": ids, "targets": tg})
    return {"seqs": seqs}


def batch_loss(model, batch):
    n = sum(sum(1 for t in s["targets"] if t >= 0) for s in batch["seqs"])
    total = 0.0
    for s in batch["seqs"]:
        logits = model(input_ids=torch.tensor([s["ids"]])).logits[0]
        total = total + F.cross_entropy(logits, torch.tensor(s["targets"]), ignore_index=-1, reduction="sum")
    return total / n


def lora_config(name, rslora=False):
    gpt2 = name == "gpt2"
    return LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, use_rslora=rslora,
                      target_modules=TARGETS_GPT2 if gpt2 else TARGETS_LLAMA, fan_in_fan_out=gpt2,
                      task_type="CAUSAL_LM")


def perturb_lora(model, seed):
    """Random lora_A (std 1/sqrt(in)) and lora_B (std 0.1), in named_parameters order."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pn, p in model.named_parameters():
            if ".lora_A." in pn:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            elif ".lora_B." in pn:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def peft_file_name(pn):
    """In-memory PEFT parameter name -> the key adapter_model.safetensors uses."""
    return pn.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def lora_grads(model):
    return {peft_file_name(pn): p.grad.detach().clone().contiguous()
            for pn, p in model.named_parameters() if p.requires_grad}


def adapter_keys(d):
    return set(load_file(os.path.join(d, "adapter_model.safetensors")).keys())


def trajectory(model, batch, lr):
    params = [(pn, p) for pn, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for _, p in params if p.ndim >= 2], "weight_decay": 0.01},
              {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=True)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    plist = [p for _, p in params]
    rec = {"loss": [], "lr": [], "grad_norm": []}
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = batch_loss(model, batch)
        loss.backward()
        lrs = [g["lr"] for g in opt.param_groups]
        assert all(x == lrs[0] for x in lrs)
        norm = torch.nn.utils.clip_grad_norm_(plist, max_norm=1.0)
        rec["loss"].append(loss.item())
        rec["lr"].append(float(lrs[0]))
        rec["grad_norm"].append(norm.item())
        opt.step()
        sched.step()
    with torch.no_grad():
        rec["final_loss"] = batch_loss(model, batch).item()
    return rec


def expected_lr(base, k):
    if k < WARMUP:
        return base * k / max(1, WARMUP)
    prog = (k - WARMUP) / max(1, STEPS - WARMUP)
    return base * max(0.0, 0.5 * (1.0 + math.cos(math.pi * prog)))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_train_refs.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    batch = make_batch()
    with open(os.path.join(out, "batch.json"), "w") as f:
        json.dump(batch, f)
    refs = {}
    failures = []
    for name, seed in MODELS.items():
        r = refs[name] = {}
        d = os.path.join(out, name)
        build(name, seed).save_pretrained(d, safe_serialization=True)

        # 1. full fine-tuning: loss and every parameter's gradient
        m = load_base(d)
        r["n_params"] = sum(p.numel() for p in m.parameters())
        m.zero_grad(set_to_none=True)
        loss = batch_loss(m, batch)
        loss.backward()
        r["full"] = {"loss": loss.item()}
        save_file({pn: p.grad.detach().clone().contiguous() for pn, p in m.named_parameters()},
                  os.path.join(out, name + ".full.grads.safetensors"))

        # 2./3. LoRA (and rsLoRA for llama): perturbed A/B, adapter files, grads, logits
        for tag, rs in [("lora", False)] + ([("rslora", True)] if name == "llama" else []):
            pm = get_peft_model(load_base(d), lora_config(name, rs))
            perturb_lora(pm, 100 + seed)  # same values for lora and rslora
            ad = os.path.join(out, f"{name}.{tag}")
            pm.save_pretrained(ad)
            pm.train()
            pm.zero_grad(set_to_none=True)
            loss = batch_loss(pm, batch)
            loss.backward()
            r[tag] = {"loss": loss.item()}
            g = lora_grads(pm)
            if set(g) != adapter_keys(ad):
                failures.append(f"{name}.{tag}: gradient keys differ from adapter_model.safetensors keys")
            save_file(g, os.path.join(out, f"{name}.{tag}.grads.safetensors"))
            if tag == "lora":
                pm.eval()
                with torch.no_grad():
                    blocks = [pm(input_ids=torch.tensor([s["ids"]])).logits[0] for s in batch["seqs"]]
                torch.cat(blocks).numpy().astype("<f4").tofile(os.path.join(out, f"{name}.lora.logits.f32"))
            r[tag]["n_trainable"] = sum(p.numel() for p in pm.parameters() if p.requires_grad)

        # 4. ten-step trajectories
        if name in TRAJ_MODELS:
            m = load_base(d)
            r["traj_full"] = trajectory(m, batch, 1e-3)
            save_file({pn: p.detach().clone().contiguous() for pn, p in m.named_parameters()},
                      os.path.join(out, name + ".traj_full.final.safetensors"))
            pm = PeftModel.from_pretrained(load_base(d), os.path.join(out, name + ".lora"), is_trainable=True)
            pm.train()
            r["traj_lora"] = trajectory(pm, batch, 1e-2)
            sd = {k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(pm).items()}
            save_file(sd, os.path.join(out, name + ".traj_lora.final.safetensors"))
            for kind, base in [("traj_full", 1e-3), ("traj_lora", 1e-2)]:
                want = [expected_lr(base, k) for k in range(STEPS)]
                if any(abs(a - b) > 1e-12 for a, b in zip(r[kind]["lr"], want)):
                    failures.append(f"{name}.{kind}: lr schedule {r[kind]['lr']} != {want}")

        line = f"{name}: {r['n_params']} params, full loss {r['full']['loss']:.6f}, lora loss {r['lora']['loss']:.6f}"
        if "rslora" in r:
            line += f", rslora loss {r['rslora']['loss']:.6f}"
        if "traj_full" in r:
            line += (f", traj_full {r['traj_full']['loss'][0]:.4f}->{r['traj_full']['final_loss']:.4f}"
                     f", traj_lora {r['traj_lora']['loss'][0]:.4f}->{r['traj_lora']['final_loss']:.4f}")
        print(line)
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(refs, f, indent=1)
    failures += check_train_refs.check(out)
    print(f"done in {time.time() - t0:.1f} s")
    if failures:
        for x in failures:
            print("SELF-CHECK FAILED:", x, file=sys.stderr)
        sys.exit(1)
    print("self-checks passed")


if __name__ == "__main__":
    main()
