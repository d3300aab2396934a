#!/usr/bin/env python3
"""bench/make_models.py — GGUF files with RANDOM weights in the shapes of real
models, for speed benchmarks (speed and memory depend on shapes, not values).

Every file says so plainly: its name starts with "random-", general.name says
"RANDOM WEIGHTS", and general.description repeats it. Text generated from them
is noise; perplexity is meaningless.

Shapes (real hyper-parameters of the named checkpoints; all tie the output
projection to the token embedding, as those checkpoints do):
  stories15M    llama  dim 288, ffn 768,  6 layers,  6 heads,  vocab 32000, ctx 256
  stories42M    llama  dim 512, ffn 1376, 8 layers,  8 heads,  vocab 32000, ctx 1024
  stories110M   llama  dim 768, ffn 2048, 12 layers, 12 heads, vocab 32000, ctx 1024
  smollm2-135M  llama  dim 576, ffn 1536, 30 layers, 9 heads / 3 KV heads,
                vocab 49152, ctx 8192, rope base 100000
  gpt2-124M     gpt2   dim 768, ffn 3072, 12 layers, 12 heads, vocab 50257, ctx 1024
Each in F32, Q8_0 and Q4_0 (gguf-py's reference quantizers; every 2-D matrix,
token embedding included, in the file's type; norms, biases and GPT-2's
position table stay F32).

Metadata keys and tensor names are llama.cpp's own, taken from gguf-py's
constants (gguf.Keys / gguf.TENSOR_NAMES), so llama.cpp loads the files:
llama: token_embd, blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,
ffn_gate,ffn_up,ffn_down}, output_norm; gpt2: token_embd, position_embd,
blk.N.{attn_norm,attn_qkv,attn_output,ffn_norm,ffn_up,ffn_down} (+ .bias),
output_norm (+ .bias). The vocabulary (tokenizer.* keys) is copied from
  stories*      ../shared/models/tokenizers/vocab-llama-spm.gguf (Llama SPM, 32000)
  gpt2-124M     ../shared/models/tokenizers/vocab-gpt-2.gguf     (GPT-2 BPE, 50257)
  smollm2-135M  the real SmolLM2-135M-Instruct GGUF from scripts/get-models.sh
                (byte-level BPE, 49152); skipped with a warning when absent.

Output: $CTUNE_CACHE/models/random/random-<shape>-<TYPE>.gguf plus MANIFEST.tsv
(name, bytes, sha256). Idempotent: a file whose size matches the manifest is
kept; --verify rechecks hashes; --force rewrites.

Usage: make_models.py [--out DIR] [--shapes a,b] [--types F32,Q8_0,Q4_0]
                      [--shared DIR] [--smollm2 FILE] [--force] [--verify] [--list]
"""
import argparse
import hashlib
import os
import sys
import time

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import LlamaFileType
    from gguf import MODEL_TENSOR as T
except ImportError:  # pragma: no cover
    sys.exit("make_models.py: needs gguf-py (pip install gguf; scripts/setup.sh puts it in the venv)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("CTUNE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ctune")

# name: arch, dim, ffn, layers, heads, kv heads, ctx, rope base, vocab source
SHAPES = {
    "stories15M":   dict(arch="llama", dim=288, ffn=768,  L=6,  nh=6,  nkv=6,  ctx=256,  rope=10000.0, vocab="llama-spm"),
    "stories42M":   dict(arch="llama", dim=512, ffn=1376, L=8,  nh=8,  nkv=8,  ctx=1024, rope=10000.0, vocab="llama-spm"),
    "stories110M":  dict(arch="llama", dim=768, ffn=2048, L=12, nh=12, nkv=12, ctx=1024, rope=10000.0, vocab="llama-spm"),
    "smollm2-135M": dict(arch="llama", dim=576, ffn=1536, L=30, nh=9,  nkv=3,  ctx=8192, rope=100000.0, vocab="smollm2"),
    "gpt2-124M":    dict(arch="gpt2",  dim=768, ffn=3072, L=12, nh=12, nkv=12, ctx=1024, rope=None, vocab="gpt-2"),
}
TYPES = {"F32": (QT.F32, LlamaFileType.ALL_F32),
         "Q8_0": (QT.Q8_0, LlamaFileType.MOSTLY_Q8_0),
         "Q4_0": (QT.Q4_0, LlamaFileType.MOSTLY_Q4_0)}
MANIFEST = "MANIFEST.tsv"
SEED = 1234


def tname(kind, bid=None, suffix="weight"):
    """llama.cpp's tensor name for a gguf.MODEL_TENSOR kind, e.g. blk.3.attn_q.weight."""
    base = gguf.TENSOR_NAMES[kind]
    return (base.format(bid=bid) if bid is not None else base) + "." + suffix


def read_vocab(path):
    """All tokenizer.* metadata of a GGUF file as (key, value, type, subtype)."""
    r = gguf.GGUFReader(path)
    out = []
    for key, f in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vt = f.types[0]
        sub = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        out.append((key, f.contents(), vt, sub))
    ntok = len(r.fields["tokenizer.ggml.tokens"].data)
    return out, ntok


def make_weights(s, V, rng):
    """Random tensors of one shape: {name: float32 array}, numpy row-major
    (out, in) for matrices, which gguf-py stores as ggml's (in, out)."""
    C, F, L = s["dim"], s["ffn"], s["L"]
    HS = C // s["nh"]
    KV = HS * s["nkv"]
    std = 0.02

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * std)

    w = {tname(T.TOKEN_EMBD): mat(V, C)}
    if s["arch"] == "gpt2":
        w[tname(T.POS_EMBD)] = mat(s["ctx"], C)
    for i in range(L):
        w[tname(T.ATTN_NORM, i)] = np.ones(C, np.float32)
        if s["arch"] == "llama":
            w[tname(T.ATTN_Q, i)] = mat(C, C)
            w[tname(T.ATTN_K, i)] = mat(KV, C)
            w[tname(T.ATTN_V, i)] = mat(KV, C)
            w[tname(T.ATTN_OUT, i)] = mat(C, C)
            w[tname(T.FFN_NORM, i)] = np.ones(C, np.float32)
            w[tname(T.FFN_GATE, i)] = mat(F, C)
            w[tname(T.FFN_UP, i)] = mat(F, C)
            w[tname(T.FFN_DOWN, i)] = mat(C, F)
        else:
            w[tname(T.ATTN_NORM, i, "bias")] = np.zeros(C, np.float32)
            w[tname(T.ATTN_QKV, i)] = mat(C + 2 * KV, C)
            w[tname(T.ATTN_QKV, i, "bias")] = np.zeros(C + 2 * KV, np.float32)
            w[tname(T.ATTN_OUT, i)] = mat(C, C)
            w[tname(T.ATTN_OUT, i, "bias")] = np.zeros(C, np.float32)
            w[tname(T.FFN_NORM, i)] = np.ones(C, np.float32)
            w[tname(T.FFN_NORM, i, "bias")] = np.zeros(C, np.float32)
            w[tname(T.FFN_UP, i)] = mat(F, C)
            w[tname(T.FFN_UP, i, "bias")] = np.zeros(F, np.float32)
            w[tname(T.FFN_DOWN, i)] = mat(C, F)
            w[tname(T.FFN_DOWN, i, "bias")] = np.zeros(C, np.float32)
    w[tname(T.OUTPUT_NORM)] = np.ones(C, np.float32)
    if s["arch"] == "gpt2":
        w[tname(T.OUTPUT_NORM, None, "bias")] = np.zeros(C, np.float32)
    # no output.weight: tied to token_embd (llama.cpp falls back to it)
    return w


def write_file(path, shape_name, s, vocab, V, weights, tname_):
    qtype, ftype = TYPES[tname_]
    arch = s["arch"]
    C = s["dim"]
    HS = C // s["nh"]
    w = gguf.GGUFWriter(path + ".tmp", arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("RANDOM WEIGHTS - %s shape (%s) - not a trained model" % (shape_name, tname_))
    w.add_description("ctune benchmark file: random weights (numpy seed %d, N(0, 0.02)) in the "
                      "real shapes of %s; generated by bench/make_models.py. Output is noise."
                      % (SEED, shape_name))
    w.add_context_length(s["ctx"])
    w.add_embedding_length(C)
    w.add_block_count(s["L"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["nh"])
    w.add_head_count_kv(s["nkv"])
    if arch == "llama":
        w.add_layer_norm_rms_eps(1e-5)
        w.add_rope_dimension_count(HS)
        w.add_rope_freq_base(s["rope"])
        w.add_vocab_size(V)
    else:
        w.add_layer_norm_eps(1e-5)
    w.add_file_type(ftype)
    if qtype != QT.F32:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, val, vt, sub in vocab:
        w.add_key_value(key, val, vt, sub_type=sub)
    pos_name = tname(T.POS_EMBD)
    for name, arr in weights.items():
        if qtype == QT.F32 or arr.ndim == 1 or name == pos_name:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(out):
    m = {}
    p = os.path.join(out, MANIFEST)
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3 and parts[0] != "file":
                    m[parts[0]] = (int(parts[1]), parts[2])
    return m


def save_manifest(out, m):
    p = os.path.join(out, MANIFEST)
    with open(p + ".tmp", "w") as f:
        f.write("file\tbytes\tsha256\n")
        for k in sorted(m):
            f.write("%s\t%d\t%s\n" % (k, m[k][0], m[k][1]))
    os.replace(p + ".tmp", p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(CACHE, "models", "random"))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    ap.add_argument("--smollm2", default=os.path.join(CACHE, "models", "SmolLM2-135M-Instruct-Q4_1.gguf"))
    ap.add_argument("--force", action="store_true", help="rewrite existing files")
    ap.add_argument("--verify", action="store_true", help="recheck sha256 of existing files")
    ap.add_argument("--list", action="store_true", help="print the paths that would be made and exit")
    a = ap.parse_args()

    shapes = [x for x in a.shapes.split(",") if x]
    types = [x for x in a.types.split(",") if x]
    for x in shapes:
        if x not in SHAPES:
            sys.exit("make_models.py: unknown shape %r (have: %s)" % (x, ", ".join(SHAPES)))
    for x in types:
        if x not in TYPES:
            sys.exit("make_models.py: unknown type %r (have: %s)" % (x, ", ".join(TYPES)))
    if a.list:
        for sname in shapes:
            for t in types:
                print(os.path.join(a.out, "random-%s-%s.gguf" % (sname, t)))
        return 0

    vocab_files = {
        "llama-spm": os.path.join(a.shared, "models", "tokenizers", "vocab-llama-spm.gguf"),
        "gpt-2": os.path.join(a.shared, "models", "tokenizers", "vocab-gpt-2.gguf"),
        "smollm2": a.smollm2,
    }
    os.makedirs(a.out, exist_ok=True)
    manifest = load_manifest(a.out)
    made = kept = skipped = 0
    for sname in shapes:
        s = SHAPES[sname]
        todo = []
        for t in types:
            fn = "random-%s-%s.gguf" % (sname, t)
            path = os.path.join(a.out, fn)
            ok = (not a.force and fn in manifest and os.path.exists(path)
                  and os.path.getsize(path) == manifest[fn][0])
            if ok and a.verify and sha256(path) != manifest[fn][1]:
                print("make_models: %s: sha256 differs from %s, rewriting" % (fn, MANIFEST))
                ok = False
            if ok:
                kept += 1
                print("make_models: keep  %s (%.1f MB)" % (path, manifest[fn][0] / 1e6))
            else:
                todo.append((t, fn, path))
        if not todo:
            continue
        vf = vocab_files[s["vocab"]]
        if not os.path.exists(vf):
            hint = "run scripts/get-models.sh" if s["vocab"] == "smollm2" else "is ../shared present?"
            print("make_models: WARNING: skipping %s: vocabulary source %s not found (%s)" % (sname, vf, hint))
            skipped += len(todo)
            continue
        vocab, V = read_vocab(vf)
        t0 = time.time()
        # The same seed per shape: F32 and quantized files hold the same weights.
        weights = make_weights(s, V, np.random.default_rng(SEED))
        for t, fn, path in todo:
            write_file(path, sname, s, vocab, V, weights, t)
            size = os.path.getsize(path)
            manifest[fn] = (size, sha256(path))
            save_manifest(a.out, manifest)
            made += 1
            print("make_models: wrote %s (%.1f MB, vocab %d from %s, %.1f s)"
                  % (path, size / 1e6, V, os.path.basename(vf), time.time() - t0))
        del weights
    print("make_models: %d written, %d kept, %d skipped; RANDOM weights, in %s" % (made, kept, skipped, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
