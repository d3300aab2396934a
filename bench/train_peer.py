#!/usr/bin/env python3
"""bench/train_peer.py — the PyTorch side of the training benchmark: the
configurations bench/bench_train.c runs, done the way users run them today
(transformers + PEFT, eager PyTorch on the CPU), set up at its best.

One configuration per call; it runs in a child process of this script (peak
RSS is per process) and prints one JSON line with the fields bench_train
prints (tok/s, ms/step, peak RSS, trainable and total parameter counts, model
FLOP rate; "side": "pytorch").

Set-up (chosen to give PyTorch its best case on this CPU):
  - torch.set_num_threads(THREADS) (default 2, one per core); OPENBLAS_CORETYPE
    is removed from the environment (torch does not use OpenBLAS: its GEMMs are
    oneMKL for f32 and oneDNN for bf16, torch.__config__.show() says which, and
    the JSON line records the first lines of it);
  - models built from configs with RANDOM weights in the shapes of
    bench/make_models.py (SHAPES below mirrors its table: same dim, ffn, layers,
    heads, vocab, context, norm eps, rope base, tied output projection);
    attention through SDPA (transformers' default);
  - model.train() with every dropout probability 0; LoRA: peft LoraConfig(r=8,
    lora_alpha=16, lora_dropout=0, target_modules ["q_proj", "v_proj"] for
    Llama, ["c_attn"] for GPT-2), f32 weights;
  - one step: zero_grad(set_to_none), forward of B x T ids, cross-entropy over
    all B*T rows (targets = the next id of the same random stream, as
    bench_train), backward, clip_grad_norm_(1.0, foreach), AdamW(foreach=True,
    lr 1e-4, wd 0.01) step;
  - --bf16: forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)
    (master weights and optimizer f32), the mixed-precision path users take;
  - W untimed warm-up steps, R timed; tok/s = B*T*R / time of the R steps.
FLOPs: 6N per token (full), 4N (LoRA), N = all parameters (tied weights once),
as bench_train counts them.

Usage: train_peer.py --shape gpt2-124M|stories15M|stories110M|... [--method full|lora]
                     [-b 4] [-T 256] [-t 2] [-w 2] [-r 5] [--bf16] [--peak GF]
Leaves out: torch.compile (its CPU inductor build needs a C++ toolchain per
shape, minutes of compile; users of PEFT on CPU rarely turn it on), data
loading, gradient accumulation.
"""
import argparse
import json
import os
import subprocess
import sys
import time

SHAPES = {  # bench/make_models.py SHAPES
    "stories15M":   dict(arch="llama", dim=288, ffn=768,  L=6,  nh=6,  nkv=6,  ctx=256,  rope=10000.0, V=32000),
    "stories42M":   dict(arch="llama", dim=512, ffn=1376, L=8,  nh=8,  nkv=8,  ctx=1024, rope=10000.0, V=32000),
    "stories110M":  dict(arch="llama", dim=768, ffn=2048, L=12, nh=12, nkv=12, ctx=1024, rope=10000.0, V=32000),
    "smollm2-135M": dict(arch="llama", dim=576, ffn=1536, L=30, nh=9,  nkv=3,  ctx=8192, rope=100000.0, V=49152),
    "gpt2-124M":    dict(arch="gpt2",  dim=768, ffn=3072, L=12, nh=12, nkv=12, ctx=1024, rope=None, V=50257),
}
PEAK_F32, PEAK_BF16 = 234.0, 820.0


def vm_hwm_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_model(s):
    import torch
    torch.manual_seed(1234)
    if s["arch"] == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel
        cfg = GPT2Config(vocab_size=s["V"], n_positions=s["ctx"], n_embd=s["dim"], n_layer=s["L"],
                         n_head=s["nh"], n_inner=s["ffn"], layer_norm_epsilon=1e-5, resid_pdrop=0.0,
                         embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True)
        m = GPT2LMHeadModel(cfg)
        targets = ["c_attn"]
    else:
        from transformers import LlamaConfig, LlamaForCausalLM
        cfg = LlamaConfig(vocab_size=s["V"], hidden_size=s["dim"], intermediate_size=s["ffn"],
                          num_hidden_layers=s["L"], num_attention_heads=s["nh"], num_key_value_heads=s["nkv"],
                          max_position_embeddings=s["ctx"], rms_norm_eps=1e-5, rope_theta=s["rope"],
                          tie_word_embeddings=True, attention_dropout=0.0, hidden_act="silu")
        m = LlamaForCausalLM(cfg)
        targets = ["q_proj", "v_proj"]
    return m.float(), targets


def batch(B, T, V):
    """B sequences of T+1 ids from bench_train's LCG: ids = first T, targets = next."""
    import torch
    x = 0x9E3779B97F4A7C15
    M = (1 << 64) - 1
    ids, tg = [], []
    for _ in range(B):
        seq = []
        for _ in range(T + 1):
            x = (x * 6364136223846793005 + 1442695040888963407) & M
            seq.append((x >> 33) % V)
        ids.append(seq[:T])
        tg.append(seq[1:])
    return torch.tensor(ids, dtype=torch.long), torch.tensor(tg, dtype=torch.long)


def child(a):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    s = SHAPES[a.shape]
    model, targets = build_model(s)
    n_params = sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once
    if a.method == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets,
                                                 bias="none", task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=True)
    ids, tg = batch(a.B, a.T, s["V"])
    V = s["V"]

    def step():
        opt.zero_grad(set_to_none=True)
        if a.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(input_ids=ids).logits
                loss = F.cross_entropy(logits.float().view(-1, V), tg.view(-1))
        else:
            logits = model(input_ids=ids).logits
            loss = F.cross_entropy(logits.view(-1, V), tg.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        return float(loss.detach())

    loss0 = None
    for _ in range(a.warmup):
        l = step()
        loss0 = l if loss0 is None else loss0
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        l = step()
        times.append(time.perf_counter() - t0)
        loss0 = l if loss0 is None else loss0
    tot = sum(times)
    N = a.B * a.T
    tps = N * a.reps / tot
    fpt = (4.0 if a.method == "lora" else 6.0) * n_params
    attn_fpt = 12.0 * s["L"] * a.T * s["dim"]
    peak = a.peak or (PEAK_BF16 if a.bf16 else PEAK_F32)
    gf = fpt * tps / 1e9
    cfg_lines = [x.strip() for x in torch.__config__.show().splitlines() if x.strip().startswith("- Intel")]
    print(json.dumps({
        "side": "pytorch", "model": a.shape, "arch": s["arch"], "method": a.method,
        "precision": "bf16-autocast" if a.bf16 else "f32", "B": a.B, "T": a.T, "threads": a.threads,
        "warmup": a.warmup, "reps": a.reps, "n_params": n_params, "trainable": trainable,
        "tok_s": round(tps, 3), "tok_s_best": round(N / min(times), 3),
        "ms_step": round(1e3 * tot / a.reps, 3), "ms_step_best": round(1e3 * min(times), 3),
        "gflop_s": round(gf, 3), "attn_gflop_s": round(attn_fpt * tps / 1e9, 3), "peak_gflop_s": peak,
        "pct_peak": round(100.0 * gf / peak, 2), "peak_rss_mib": round(vm_hwm_mib(), 1),
        "loss_first": loss0, "loss_last": l, "torch": torch.__version__, "blas": "; ".join(cfg_lines),
    }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--method", default="full", choices=["full", "lora"])
    ap.add_argument("-b", dest="B", type=int, default=4)
    ap.add_argument("-T", dest="T", type=int, default=256)
    ap.add_argument("-t", dest="threads", type=int, default=2)
    ap.add_argument("-w", dest="warmup", type=int, default=2)
    ap.add_argument("-r", dest="reps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="forward under torch.autocast(cpu, bfloat16)")
    ap.add_argument("--peak", type=float, default=0.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.T > SHAPES[a.shape]["ctx"]:
        sys.exit("train_peer: -T %d exceeds the %s context of %d" % (a.T, a.shape, SHAPES[a.shape]["ctx"]))
    if a.child:
        child(a)
        return
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env["OMP_NUM_THREADS"] = str(a.threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"] + sys.argv[1:], env=env)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
