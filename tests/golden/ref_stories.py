"""Independent NumPy reference for stories260K (llama2.c format).

Reads the llama2.c checkpoint and tokenizer.bin with NumPy alone and computes
(greedy decoding in float64; the perplexity forward in float32 for speed, its
log-softmax in float64):
  - the prompt ids (BOS + llama2.c's SentencePiece-by-score encoder: dummy
    prefix " ", code points or <0xNN> byte fallback, then repeatedly merge the
    best-scoring adjacent pair, leftmost first);
  - a greedy continuation of N tokens (stopping early at EOS), its ids, and the
    bytes the CLI must print (pieces; the leading space after BOS dropped,
    <0xNN> as bytes, BOS/EOS as nothing), plus a trailing newline;
  - the perplexity of a text file (BOS + the whole file encoded as one text)
    with the sliding windows of docs/eval.md: window w covers tokens
    [w*stride, w*stride+ctx); each window scores the targets no earlier
    window scored, never its own first token; token 0 is never a target.

The forward is Meta's Llama: RMSNorm (eps 1e-5), RoPE on adjacent pairs
(x[2i], x[2i+1]) with theta 10000, grouped-query attention, SwiGLU, tied or
separate classifier — vectorized over a whole window.

usage: ref_stories.py MODEL.bin TOKENIZER.bin DATA.txt OUTDIR [--prompt P] [-n N] [--ctx C] [--stride S]
Writes OUTDIR/gen_ids.txt (prompt ids line, generated ids line),
OUTDIR/gen_text.bin, OUTDIR/ppl.txt ("ppl n_tokens n_scored nll_sum ctx stride"),
OUTDIR/data_ids.i32 (the encoded data, int32 little-endian).
"""
import argparse
import heapq
import os
import re
import time

import numpy as np

BOS, EOS = 1, 2


# ---- checkpoint ------------------------------------------------------------

def load_model(path, dtype=np.float64):
    raw = np.fromfile(path, dtype="<i4", count=7)
    C, H, L, NH, NKV, V, S = (int(x) for x in raw)
    shared = V > 0
    V = abs(V)
    HS = C // NH
    KVD = NKV * HS
    w = np.fromfile(path, dtype="<f4", offset=28).astype(dtype)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return a

    m = dict(C=C, H=H, L=L, NH=NH, NKV=NKV, V=V, S=S, HS=HS)
    m["emb"] = take(V, C)
    m["rms_att"] = take(L, C)
    m["wq"] = take(L, C, C)
    m["wk"] = take(L, KVD, C)
    m["wv"] = take(L, KVD, C)
    m["wo"] = take(L, C, C)
    m["rms_ffn"] = take(L, C)
    m["w1"] = take(L, H, C)
    m["w2"] = take(L, C, H)
    m["w3"] = take(L, H, C)
    m["rms_final"] = take(C)
    take(S, HS // 2)  # freq_cis_real (unused: recomputed)
    take(S, HS // 2)  # freq_cis_imag
    m["wcls"] = m["emb"] if shared else take(V, C)
    return m


def rmsnorm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + x.dtype.type(1e-5)) * w


def rope(x, pos, HS):
    # x: (T, nh, HS); rotate pairs (2i, 2i+1) by pos * 10000^(-2i/HS)
    inv = 1.0 / 10000.0 ** (np.arange(0, HS, 2) / HS)
    ang = pos[:, None] * inv[None, :]                  # (T, HS/2)
    c, s = np.cos(ang)[:, None, :].astype(x.dtype), np.sin(ang)[:, None, :].astype(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def forward(m, toks):
    """Logits (T, V) for toks at positions 0..T-1."""
    T, C, NH, NKV, HS = len(toks), m["C"], m["NH"], m["NKV"], m["HS"]
    dt = m["emb"].dtype
    pos = np.arange(T, dtype=np.float64)
    mask = np.triu(np.full((T, T), -np.inf, dtype=dt), 1)
    x = m["emb"][np.asarray(toks)]
    for l in range(m["L"]):
        xb = rmsnorm(x, m["rms_att"][l])
        q = rope((xb @ m["wq"][l].T).reshape(T, NH, HS), pos, HS)
        k = rope((xb @ m["wk"][l].T).reshape(T, NKV, HS), pos, HS)
        v = (xb @ m["wv"][l].T).reshape(T, NKV, HS)
        rep = NH // NKV
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        att = q.transpose(1, 0, 2) @ k.transpose(1, 2, 0) * dt.type(1 / np.sqrt(HS)) + mask  # (NH, T, T)
        att = np.exp(att - att.max(axis=-1, keepdims=True))
        att /= att.sum(axis=-1, keepdims=True)
        o = (att @ v.transpose(1, 0, 2)).transpose(1, 0, 2).reshape(T, C)
        x = x + o @ m["wo"][l].T
        xb = rmsnorm(x, m["rms_ffn"][l])
        g = xb @ m["w1"][l].T
        x = x + ((g / (1 + np.exp(-g))) * (xb @ m["w3"][l].T)) @ m["w2"][l].T
    return rmsnorm(x, m["rms_final"]) @ m["wcls"].T


# ---- tokenizer.bin -------------------------------------------------------------

def load_tokenizer(path, V):
    data = open(path, "rb").read()
    off = 4  # max_token_length
    pieces, scores = [], []
    for _ in range(V):
        score = np.frombuffer(data, "<f4", 1, off)[0]
        n = int(np.frombuffer(data, "<i4", 1, off + 4)[0])
        pieces.append(data[off + 8:off + 8 + n])
        scores.append(float(score))
        off += 8 + n
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)
    return pieces, scores, lookup


def encode(text, tok, bos=True):
    """llama2.c's encode(), with a heap instead of the O(n^2) rescan."""
    pieces, scores, lookup = tok
    ids = [lookup[b" "]] if text else []
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            ids.append(lookup[b])
        else:
            ids.extend(x + 3 for x in b)
    n = len(ids)
    nxt, prv, ver, alive = list(range(1, n + 1)), list(range(-1, n - 1)), [0] * n, [True] * n
    heap = []

    def push(i):
        j = nxt[i] if 0 <= i < n else n
        if i < 0 or j >= n:
            return
        p = lookup.get(pieces[ids[i]] + pieces[ids[j]])
        if p is not None:
            heapq.heappush(heap, (-scores[p], i, ver[i], j, ver[j], p))

    for i in range(n - 1):
        push(i)
    while heap:
        _, i, vi, j, vj, p = heapq.heappop(heap)
        if not (alive[i] and alive[j] and ver[i] == vi and ver[j] == vj and nxt[i] == j):
            continue
        ids[i] = p
        ver[i] += 1
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] < n:
            prv[nxt[j]] = i
        push(prv[i])
        push(i)
    out = [ids[i] for i in range(n) if alive[i]]
    return ([BOS] if bos else []) + out


def piece_bytes(tok, prev, t):
    if t in (BOS, EOS):
        return b""
    p = tok[0][t]
    if prev == BOS and p.startswith(b" "):
        p = p[1:]
    mm = re.fullmatch(rb"<0x([0-9A-Fa-f]{2})>", p)
    return bytes([int(mm.group(1), 16)]) if mm else p


# ---- generation and perplexity ---------------------------------------------------

def greedy(m, ids, n):
    out, margins = [], []
    seq = list(ids)
    for _ in range(n):
        lg = forward(m, seq)[-1]
        top2 = np.sort(lg)[-2:]
        nxt = int(np.argmax(lg))
        if nxt == EOS:
            break
        margins.append(top2[1] - top2[0])
        out.append(nxt)
        seq.append(nxt)
    return out, min(margins) if margins else float("inf")


def perplexity(m, toks, ctx, stride):
    N, nll, scored, scored_end, start = len(toks), 0.0, 0, 1, 0
    while True:
        end = min(start + ctx, N)
        t0 = max(start + 1, scored_end)
        if t0 < end:
            lg = forward(m, toks[start:end - 1])        # rows predict start+1 .. end-1
            rows = lg[t0 - 1 - start:].astype(np.float64)
            tgt = np.asarray(toks[t0:end])
            mx = rows.max(axis=-1, keepdims=True)
            lse = mx[:, 0] + np.log(np.exp(rows - mx).sum(axis=-1))
            nll += float(np.sum(lse - rows[np.arange(len(tgt)), tgt]))
            scored += len(tgt)
            scored_end = end
        if end == N:
            break
        start += stride
    return float(np.exp(nll / scored)), scored, nll


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    m = load_model(a.model)
    tok = load_tokenizer(a.tokenizer, m["V"])

    t = time.time()
    pids = encode(a.prompt, tok)
    gen, margin = greedy(m, pids, a.n)
    assert len(gen) == a.n and all(0 <= g < m["V"] for g in gen), f"ref_stories: greedy gave {len(gen)} tokens"
    text, prev = b"", pids[-1]
    for g in gen:
        text += piece_bytes(tok, prev, g)
        prev = g
    with open(os.path.join(a.out, "gen_ids.txt"), "w") as f:
        f.write(" ".join(map(str, pids)) + "\n" + " ".join(map(str, gen)) + "\n")
    open(os.path.join(a.out, "gen_text.bin"), "wb").write(text + b"\n")
    print(f"greedy: {len(gen)} tokens, smallest top-2 logit margin {margin:.2e}, {time.time() - t:.1f} s")
    print(text.decode("utf-8", "replace")[:300])

    t = time.time()
    data = open(a.data, encoding="utf-8").read()
    ids = encode(data, tok)
    np.asarray(ids, dtype="<i4").tofile(os.path.join(a.out, "data_ids.i32"))
    m32 = load_model(a.model, np.float32)  # float32 forward here: 3x faster, errors ~1e-6
    ppl, scored, nll = perplexity(m32, ids, a.ctx, a.stride)
    # every target once; below uniform over 512 tokens
    assert scored == len(ids) - 1 and 1.0 < ppl < 512, \
        f"ref_stories: scored {scored} of {len(ids) - 1} targets, ppl {ppl}: the reference is broken"
    with open(os.path.join(a.out, "ppl.txt"), "w") as f:
        f.write(f"{ppl:.10g} {len(ids)} {scored} {nll:.10g} {a.ctx} {a.stride}\n")
    print(f"perplexity {ppl:.6f} over {scored} of {len(ids)} tokens (ctx {a.ctx}, stride {a.stride}), "
          f"{time.time() - t:.1f} s")


if __name__ == "__main__":
    main()
