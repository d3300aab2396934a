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
  - --targets all: LoRA on every linear layer of the blocks (Llama: q,k,v,o,
    gate,up,down; GPT-2: c_attn, c_proj (attn and mlp), c_fc), as bench_train
    --targets all ("all-linear"); --lora-r R sets r (alpha 2r).
FLOPs: 6N per token (full), 4N (LoRA, QLoRA), N = all parameters (tied weights
once; a 4-bit weight counts as its original shape), as bench_train counts them.

QLoRA (--method qlora), the way users run it today:
  - the random model is a CHECKPOINT, loaded the user's way: the parent writes
    it once, in a process of its own, into $CTUNE_CACHE/models/peer-hf/<shape>
    (config.json + safetensors, one shard per block; float32, llama2-7B
    bfloat16), tensor by tensor from a model built on the meta device (N(0,
    0.02) weights, norms 1, biases 0), so no f32 model is ever materialized
    and the child's VmHWM is the user's; the child calls
    AutoModelForCausalLM.from_pretrained(dir, dtype=compute dtype,
    quantization_config=BitsAndBytesConfig(load_in_4bit=True,
    bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
    bnb_4bit_compute_dtype=bfloat16 with --bf16 else float32)), which puts
    every linear layer of the blocks into a bnb.nn.Linear4bit and quantizes
    its weight as it is read (the embeddings and the head stay unquantized:
    transformers' default), then peft.prepare_model_for_kbit_training
    (freezes the base, casts every non-4-bit parameter to f32, gradient
    checkpointing on with transformers' defaults) and LoraConfig on
    --targets; AdamW over the LoRA parameters; --bf16 also runs the forward
    under autocast as for the other methods (what Trainer(bf16=True) does on
    the CPU). The JSON line adds load_s, rss_after_load_mib, RssAnon/RssFile
    after the load and at the end, the Linear4bit count and bytes, "build".
  - bitsandbytes 0.50.2's CPU backend trains through gemm_4bit =
    dequantize the weight (its C kernels for NF4 and the double-quantized
    absmax) + F.linear; the input gradient dequantizes again. The 'kernels'
    package its import warns about only feeds gemv_4bit, which Linear4bit
    takes in eval mode without gradients (inference, after repacking the
    weight), never in training; and it fetches its kernel from the Hugging
    Face Hub at run time (get_kernel("kernels-community/quantization-
    bitsandbytes")), which fails offline ("not available in the local
    cache"). So it is not installed: the warning is harmless here.

Llama-2-7B (--shape llama2-7B, qlora only; bench/make_7b.py's shape: dim 4096,
ffn 11008, 32 layers, 32 heads, vocab 32000, untied head). Measured on 2- and
4-layer versions (--layers, T=256, B=1, r=16, targets all, 2 threads, a
shared machine, load ~2), 13:44-13:49 UTC 2026-12-01:
  - --bf16: peak RSS 2587 / 3608 MiB (2 / 4 layers): +510 MiB per layer while
    loading, of which ~386 MiB are pages of the checkpoint's shards (RssFile,
    gone after the load) and ~115 MiB the 4-bit weights; at the end RssAnon
    1990 / 2218 MiB (+114 MiB per layer). Extrapolated to 32 layers: VmHWM
    ~18 GiB (~12 GiB of it file pages), ~5.4 GiB anonymous at the end. Step
    (best) 3.21 / 5.78 s: 1.28 s per layer + 0.64 s, ~42 s per step at 32
    layers (~24 tok/s).
  - f32 compute dtype: from_pretrained upcasts each bf16 tensor before
    quantizing it: +592 MiB of peak per layer, ~21.5 GiB at 32 layers, and
    3.24 s of step per layer (~104 s per step): refused beyond 8 layers.
  - the full model, run once (13:49-13:55 UTC, load 1.2-3.1, -w 0 -r 1
    --bf16 --lora-r 16 --targets all -b 1 -T 256): 5 min 43 s in all =
    the 13.5 GB checkpoint written in 67 s (once; kept in the cache),
    from_pretrained with quantization 190 s, one step 70.5 s (3.6 tok/s,
    cold: no warm-up step). Peak RSS 17646 MiB, RssFile 12305 MiB of it
    right after the load (the shards' pages), RssAnon 4698 MiB then and
    5768 MiB at the end; MemAvailable fell by at most 5.7 GiB. 224
    Linear4bit, 3.24 GB of 4-bit weights, 39.98 M LoRA parameters.
    ctune beside it (13:56-13:59, load 1.4-4.4): bench_train
    random-llama2-7B-BF16.gguf --method qlora --base nf4 --targets all
    --lora-r 16 -b 1 -T 256 -w 0 -r 1 --bf16 --checkpointing: 2 min 30 s in
    all, set-up (conversion to NF4) 89 s, one step 59.3 s (4.3 tok/s), peak
    RSS 4363 MiB (predicted 4760), the same 39.98 M trainable parameters.
  It refuses to start with MemAvailable < 18 GiB (CTUNE_PEER_FORCE=1 overrides).

Usage: train_peer.py --shape gpt2-124M|stories15M|stories110M|...|llama2-7B
                     [--method full|lora|qlora] [--targets qv|all] [--lora-r 8]
                     [-b 4] [-T 256] [-t 2] [-w 2] [-r 5] [--bf16] [--peak GF]
                     [--layers N] [--ckpt-dtype float32|bfloat16] [--profile]
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
    # bench/make_7b.py's shape (untied head); --method qlora only
    "llama2-7B":    dict(arch="llama", dim=4096, ffn=11008, L=32, nh=32, nkv=32, ctx=4096, rope=10000.0, V=32000,
                         tie=False),
}
TARGETS = {  # --targets: qv = the attention's q and v (GPT-2: its fused c_attn); all = every linear of the blocks
    ("llama", "qv"): ["q_proj", "v_proj"],
    ("llama", "all"): ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    ("gpt2", "qv"): ["c_attn"],
    ("gpt2", "all"): ["c_attn", "c_proj", "c_fc"],  # c_proj: attn.c_proj and mlp.c_proj
}
PEAK_F32, PEAK_BF16 = 234.0, 820.0


def rss_split_mib():
    """(RssAnon, RssFile) now, MiB: anonymous memory vs pages of mapped files (the checkpoint's)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return out.get("RssAnon", -1.0), out.get("RssFile", -1.0)


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


def model_config(s):
    """(config, model class) of shape s: every dropout 0, tied head unless s says tie=False."""
    if s["arch"] == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel
        cfg = GPT2Config(vocab_size=s["V"], n_positions=s["ctx"], n_embd=s["dim"], n_layer=s["L"],
                         n_head=s["nh"], n_inner=s["ffn"], layer_norm_epsilon=1e-5, resid_pdrop=0.0,
                         embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=s.get("tie", True))
        return cfg, GPT2LMHeadModel
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=s["V"], hidden_size=s["dim"], intermediate_size=s["ffn"],
                      num_hidden_layers=s["L"], num_attention_heads=s["nh"], num_key_value_heads=s["nkv"],
                      max_position_embeddings=s["ctx"], rms_norm_eps=1e-5, rope_theta=s["rope"],
                      tie_word_embeddings=s.get("tie", True), attention_dropout=0.0, hidden_act="silu")
    return cfg, LlamaForCausalLM


def build_model(s):
    import torch
    torch.manual_seed(1234)
    cfg, cls = model_config(s)
    return cls(cfg).float()


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


def write_checkpoint(s, d, dtype_name):
    """A RANDOM-weight Hugging Face checkpoint of shape s in folder d (config.json + one safetensors
    shard per block + one for the rest + the index), written tensor by tensor from a model built on
    the meta device: no f32 model is ever materialized (a 7B one would be 27 GB). Weights N(0, 0.02)
    (GPT-2's init; Llama's initializer_range too), norms 1, biases 0; tied weights stored once."""
    import torch
    from safetensors.torch import save_file
    cfg, cls = model_config(s)
    with torch.device("meta"):
        m = cls(cfg)
    dt = getattr(torch, dtype_name)
    g = torch.Generator().manual_seed(1234)
    shards = {}
    for name, t in m.state_dict().items():
        if cfg.tie_word_embeddings and name == "lm_head.weight":  # tied to the embedding: stored once
            continue
        parts = name.split(".")
        blk = next((int(parts[i + 1]) for i, x in enumerate(parts[:-1]) if x in ("layers", "h")
                    and parts[i + 1].isdigit()), None)
        shards.setdefault(blk, []).append((name, tuple(t.shape)))
    weight_map = {}
    os.makedirs(d, exist_ok=True)
    for blk, items in shards.items():
        fn = "model-rest.safetensors" if blk is None else "model-block%03d.safetensors" % blk
        out = {}
        for name, shape in items:
            if name.endswith("bias"):
                x = torch.zeros(shape)
            elif len(shape) == 1:
                x = torch.ones(shape)
            else:
                x = torch.empty(shape).normal_(0.0, 0.02, generator=g)
            out[name] = x.to(dt).contiguous()
            weight_map[name] = fn
        save_file(out, os.path.join(d, fn), metadata={"format": "pt"})
        del out
    cfg.save_pretrained(d)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


def child(a):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    s = dict(SHAPES[a.shape])
    if a.layers:
        s["L"] = a.layers
    targets = TARGETS[(s["arch"], a.targets)]
    info = {}
    t_setup = time.perf_counter()
    if a.method == "qlora":
        # the QLoRA user's path: from_pretrained(quantization_config=...) of a checkpoint folder (written
        # by the parent, in another process, so this process's VmHWM is the user's), then
        # prepare_model_for_kbit_training (frozen base, non-4-bit parameters cast to f32, gradient
        # checkpointing on) and the LoRA adapters
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        import bitsandbytes as bnb
        cdt = torch.bfloat16 if a.bf16 else torch.float32
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=cdt)
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(a.ckpt_dir, quantization_config=q, dtype=cdt)
        info["load_s"] = round(time.perf_counter() - t0, 3)
        info["rss_after_load_mib"] = round(vm_hwm_mib(), 1)
        ra, rf = rss_split_mib()
        info["rss_anon_after_load_mib"], info["rss_file_after_load_mib"] = round(ra, 1), round(rf, 1)
        n4 = [mod for mod in model.modules() if isinstance(mod, bnb.nn.Linear4bit)]
        info["linear4bit"] = len(n4)
        info["bytes_4bit"] = sum(mod.weight.numel() * mod.weight.element_size() for mod in n4)
        # parameters() yields tied weights once; a Params4bit counts as its original shape
        n_params = sum(p.quant_state.shape.numel() if getattr(p, "quant_state", None) is not None else p.numel()
                       for p in model.parameters())
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        model = get_peft_model(model, LoraConfig(r=a.lora_r, lora_alpha=2 * a.lora_r, lora_dropout=0.0,
                                                 target_modules=targets, bias="none", task_type="CAUSAL_LM"))
        import bitsandbytes
        info.update({
            "base": "nf4", "double_quant": True, "compute_dtype": str(cdt).replace("torch.", ""),
            "checkpointing": 1, "bitsandbytes": bitsandbytes.__version__,
            "build": "random checkpoint (%s safetensors, written tensor by tensor from a meta-device model) "
                     "loaded by AutoModelForCausalLM.from_pretrained(quantization_config=BitsAndBytesConfig("
                     "nf4, double quant)), dtype=%s; peft prepare_model_for_kbit_training(gradient "
                     "checkpointing) + LoraConfig" % (a.ckpt_dtype, str(cdt).replace("torch.", "")),
        })
    else:
        model = build_model(s)
        n_params = sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once
        if a.method == "lora":
            from peft import LoraConfig, get_peft_model
            model = get_peft_model(model, LoraConfig(r=a.lora_r, lora_alpha=2 * a.lora_r, lora_dropout=0.0,
                                                     target_modules=targets, bias="none", task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=True)
    ids, tg = batch(a.B, a.T, s["V"])
    V = s["V"]
    info["setup_s"] = round(time.perf_counter() - t_setup, 3)

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
    if a.profile:  # one more step, untimed, under the profiler: its top operators to stderr
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20), file=sys.stderr)
    tot = sum(times)
    N = a.B * a.T
    tps = N * a.reps / tot
    fpt = (6.0 if a.method == "full" else 4.0) * n_params
    attn_fpt = 12.0 * s["L"] * a.T * s["dim"]
    peak = a.peak or (PEAK_BF16 if a.bf16 else PEAK_F32)
    gf = fpt * tps / 1e9
    cfg_lines = [x.strip() for x in torch.__config__.show().splitlines() if x.strip().startswith("- Intel")]
    r = {
        "side": "pytorch", "model": a.shape, "arch": s["arch"], "method": a.method,
        "precision": "bf16-autocast" if a.bf16 else "f32", "B": a.B, "T": a.T, "threads": a.threads,
        "warmup": a.warmup, "reps": a.reps, "n_params": n_params, "trainable": trainable,
        "tok_s": round(tps, 3), "tok_s_best": round(N / min(times), 3),
        "ms_step": round(1e3 * tot / a.reps, 3), "ms_step_best": round(1e3 * min(times), 3),
        "gflop_s": round(gf, 3), "attn_gflop_s": round(attn_fpt * tps / 1e9, 3), "peak_gflop_s": peak,
        "pct_peak": round(100.0 * gf / peak, 2), "peak_rss_mib": round(vm_hwm_mib(), 1),
        "loss_first": loss0, "loss_last": l, "torch": torch.__version__, "blas": "; ".join(cfg_lines),
    }
    ra, rf = rss_split_mib()
    r["rss_anon_end_mib"], r["rss_file_end_mib"] = round(ra, 1), round(rf, 1)
    if a.method != "full":
        r.update({"lora_r": a.lora_r, "targets": a.targets, "target_modules": targets})
    if a.layers:
        r["layers"] = s["L"]
    r.update(info)
    print(json.dumps(r), flush=True)


def mem_available_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1048576.0
    except OSError:
        pass
    return 0.0


def ckpt_dir(a):
    """$CTUNE_CACHE/models/peer-hf/<shape>[-L<n>]-<dtype>: the random checkpoint --method qlora loads."""
    cache = os.environ.get("CTUNE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ctune")
    name = a.shape + ("-L%d" % a.layers if a.layers else "") + "-" + a.ckpt_dtype
    return os.path.join(cache, "models", "peer-hf", name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--method", default="full", choices=["full", "lora", "qlora"])
    ap.add_argument("--targets", default="qv", choices=["qv", "all"],
                    help="LoRA targets: qv (q_proj,v_proj; GPT-2 c_attn) or all (every linear of the blocks)")
    ap.add_argument("--lora-r", type=int, default=8, help="LoRA rank (alpha = 2r)")
    ap.add_argument("--layers", type=int, default=0, help="override the shape's layer count (timing extrapolation)")
    ap.add_argument("--ckpt-dtype", default=None, choices=["float32", "bfloat16"],
                    help="dtype of the random checkpoint qlora loads (default float32; llama2-7B: bfloat16)")
    ap.add_argument("-b", dest="B", type=int, default=4)
    ap.add_argument("-T", dest="T", type=int, default=256)
    ap.add_argument("-t", dest="threads", type=int, default=2)
    ap.add_argument("-w", dest="warmup", type=int, default=2)
    ap.add_argument("-r", dest="reps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="forward under torch.autocast(cpu, bfloat16)")
    ap.add_argument("--peak", type=float, default=0.0)
    ap.add_argument("--profile", action="store_true", help="profile one extra step, top operators to stderr")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write-ckpt", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ckpt-dir", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.T > SHAPES[a.shape]["ctx"]:
        sys.exit("train_peer: -T %d exceeds the %s context of %d" % (a.T, a.shape, SHAPES[a.shape]["ctx"]))
    if a.shape == "llama2-7B" and a.method != "qlora":
        sys.exit("train_peer: llama2-7B runs with --method qlora only (its f32 model is 27 GB)")
    if a.ckpt_dtype is None:
        a.ckpt_dtype = "bfloat16" if a.shape == "llama2-7B" else "float32"
    if a.shape == "llama2-7B" and (a.layers or SHAPES[a.shape]["L"]) > 8 and not (a.child or a.write_ckpt):
        # see the docstring, "Llama-2-7B": measured on 2- and 4-layer versions
        if not a.bf16:
            sys.exit("train_peer: llama2-7B with more than 8 layers needs --bf16: with an f32 compute dtype "
                     "from_pretrained upcasts each bf16 tensor before quantizing it, ~590 MiB of peak RSS per "
                     "layer (~21.5 GiB at 32 layers)")
        avail = mem_available_gib()
        if avail < 18.0 and os.environ.get("CTUNE_PEER_FORCE") != "1":
            sys.exit("train_peer: llama2-7B --bf16 peaks at ~18 GiB resident while loading (~12 of it pages of "
                     "the checkpoint) and MemAvailable is %.1f GiB (< 18); CTUNE_PEER_FORCE=1 runs it anyway" % avail)
    if a.child:
        child(a)
        return
    if a.write_ckpt:
        write_checkpoint(dict(SHAPES[a.shape], **({"L": a.layers} if a.layers else {})), a.ckpt_dir, a.ckpt_dtype)
        return
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env["OMP_NUM_THREADS"] = str(a.threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    extra = []
    if a.method == "qlora":
        # the random checkpoint, written once (in its own process) and kept in the cache
        d = ckpt_dir(a)
        done = os.path.join(d, ".complete")
        if not os.path.exists(done):
            t0 = time.time()
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--write-ckpt", "--ckpt-dir", d, "--method", "qlora",
                                "--shape", a.shape, "--layers", str(a.layers), "--ckpt-dtype", a.ckpt_dtype],
                               env=env)
            if r.returncode:
                sys.exit(r.returncode)
            open(done, "w").close()
            print("train_peer: wrote %s in %.1f s" % (d, time.time() - t0), file=sys.stderr)
        extra = ["--ckpt-dir", d]
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"] + sys.argv[1:] + extra, env=env)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
