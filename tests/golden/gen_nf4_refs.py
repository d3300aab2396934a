"""bitsandbytes' own 4-bit quantizer outputs, for tests/unit/test_nf4.c.

Runs bitsandbytes (its CPU path: the default torch backend for quantize_4bit,
the C CPU kernel for the 8-bit nested absmax) on a few f32 matrices:
Gaussian (one nested block exactly, a non-multiple of 256 blocks, and more
than 32768 blocks so torch.mean takes its threaded path), a matrix with an
all-zero block, one with a single huge value, one whose entries sit exactly
on NF4 midpoints (ties), and one with an odd element count (a short last
block and a padded nibble).

For each case NAME, OUTDIR/NAME.safetensors holds:
  x                      the input (out, in) f32
  weight, weight.absmax, weight.quant_map, weight.nested_absmax,
  weight.nested_quant_map, weight.quant_state.bitsandbytes__nf4
                         QuantState.as_dict(packed=True) of quantize_4bit(x,
                         blocksize=64, quant_type="nf4", compress_statistics=True),
                         i.e. what Linear4bit puts in a state dict under "weight"
  plain.absmax           absmax of the same call with compress_statistics=False
  dequant                dequantize_4bit(weight, nested state)  (out, in) f32
  dequant_plain          dequantize_4bit(weight, plain state)
  fp4.weight, fp4.absmax, fp4.dequant   the same for quant_type="fp4" (plain)
and OUTDIR/manifest.txt has one line per case:  NAME out in
plus a first line "torch_threads N" (torch.mean of > 32768 values depends on it)
and "bitsandbytes VERSION".

usage: gen_nf4_refs.py OUTDIR
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

import bitsandbytes as bnb
import bitsandbytes.functional as F

NF4 = F.get_4bit_type("nf4", device="cpu")


def tie_matrix(rng):
    """Entries exactly on the f32 NF4 midpoints: with a block absmax of 1.0 (or
    0.5) the scaled value x * (1/absmax) is the midpoint itself."""
    mids = ((NF4[:-1] + NF4[1:]) / 2).numpy()
    rows = []
    for scale in (1.0, 0.5, 0.25):
        blk = np.zeros(64, np.float32)
        blk[0] = scale  # absmax of the block
        vals = np.concatenate([mids, -mids, mids]) * np.float32(scale)
        blk[1:1 + len(vals[:63])] = vals[:63]
        rows.append(blk)
        blk2 = blk.copy()
        blk2[0] = -scale
        rng.shuffle(blk2[1:])
        rows.append(blk2)
    # 6 blocks of 64 -> (6, 64); both neighbours of every midpoint appear
    return np.stack(rows).astype(np.float32)


def cases():
    rng = np.random.default_rng(1234)
    out = {}
    out["gauss"] = (rng.standard_normal((64, 256)) * 0.02).astype(np.float32)        # 256 blocks
    out["gauss_odd"] = (rng.standard_normal((48, 200))).astype(np.float32)            # 150 blocks
    z = (rng.standard_normal((32, 128)) * 0.05).astype(np.float32)
    z.reshape(-1)[3 * 64:4 * 64] = 0.0
    z.reshape(-1)[10 * 64:11 * 64] = -0.0
    out["zero_block"] = z
    h = (rng.standard_normal((16, 512)) * 0.01).astype(np.float32)
    h.reshape(-1)[5 * 64 + 17] = 1.0e4
    h.reshape(-1)[40 * 64 + 3] = -3.0e3
    out["huge"] = h
    out["ties"] = tie_matrix(rng)
    out["odd_tail"] = (rng.standard_normal((7, 151)) * 0.1).astype(np.float32)     # 1057 elements
    out["big"] = (rng.standard_normal((640, 4096)) * 0.02).astype(np.float32)       # 40960 blocks
    return out


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    lines = [f"torch_threads {torch.get_num_threads()}", f"bitsandbytes {bnb.__version__}"]
    rng7 = np.random.default_rng(77)
    for name, x in cases().items():
        xt = torch.from_numpy(x)
        q, st = F.quantize_4bit(xt, blocksize=64, quant_type="nf4", compress_statistics=True)
        qp, stp = F.quantize_4bit(xt, blocksize=64, quant_type="nf4", compress_statistics=False)
        assert torch.equal(q, qp)
        t = {"x": xt.contiguous()}
        for k, v in st.as_dict(packed=True).items():
            t["weight." + k] = v.contiguous()
        t["weight"] = q.contiguous()
        t["plain.absmax"] = stp.absmax.contiguous()
        t["dequant"] = F.dequantize_4bit(q, st).contiguous()
        t["dequant_plain"] = F.dequantize_4bit(qp, stp).contiguous()
        qf, stf = F.quantize_4bit(xt, blocksize=64, quant_type="fp4", compress_statistics=False)
        t["fp4.weight"] = qf.contiguous()
        t["fp4.absmax"] = stf.absmax.contiguous()
        t["fp4.dequant"] = F.dequantize_4bit(qf, stf).contiguous()
        save_file(t, os.path.join(outdir, name + ".safetensors"))
        lines.append(f"{name} {x.shape[0]} {x.shape[1]}")
        err = (t["dequant"] - xt).pow(2).mean().sqrt().item()
        print(f"{name}: {tuple(x.shape)} blocks {st.absmax.numel()} offset {st.offset.item():.6g} nf4 rms err {err:.4g}")
    # the double quantization of a 7B layer's 262144 block scales (4096 x 4096,
    # N(0, 0.02) rounded to bf16 as a bf16 checkpoint holds them): only the
    # scales and their 8-bit state are saved (the matrix would be 64 MB)
    x = torch.from_numpy((rng7.standard_normal((4096, 4096)) * 0.02).astype(np.float32)).bfloat16().float()
    q, st = F.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
    _, stp = F.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=False)
    d = st.as_dict(packed=True)
    save_file({"plain.absmax": stp.absmax.contiguous(), "weight.absmax": d["absmax"].contiguous(),
               "weight.nested_absmax": d["nested_absmax"].contiguous(),
               "offset": st.offset.reshape(1).float().contiguous()}, os.path.join(outdir, "scales7b.safetensors"))
    lines.append("scales scales7b 4096 4096")
    print(f"scales7b: (4096, 4096) blocks {stp.absmax.numel()} offset {st.offset.item():.6g}")
    # bitsandbytes' 8-bit blockwise quantizer on values crafted next to its
    # decision points: for every midpoint of the dynamic map, the half-steps of
    # the 65535-step grid around it and -2..2 ulps (f32) around each, -3..3 ulps
    # around the midpoint, and 20000 uniform values; blocks of 256 led by 1.0
    # (absmax 1: v = x exactly)
    code = F.create_dynamic_map(signed=True).float()
    c32 = code.numpy().astype(np.float32)
    mids = (c32[:-1] + c32[1:]) / np.float32(2)
    vals = []
    for m in mids:
        kk = int(round((float(m) + 1.0) * 32767.5))
        for k in (kk - 1, kk, kk + 1):
            t = np.float32((k + 0.5) / 32767.5 - 1.0)
            for d in (-2, -1, 0, 1, 2):
                v = t
                for _ in range(abs(d)):
                    v = np.nextafter(v, np.float32(np.inf if d > 0 else -np.inf), dtype=np.float32)
                if -1.0 <= v <= 1.0:
                    vals.append(v)
        for d in (-3, -2, -1, 0, 1, 2, 3):  # and around the midpoint itself
            v = m
            for _ in range(abs(d)):
                v = np.nextafter(v, np.float32(np.inf if d > 0 else -np.inf), dtype=np.float32)
            vals.append(v)
    vals += list(rng7.uniform(-1, 1, 20000).astype(np.float32))
    per = 255
    nblk = (len(vals) + per - 1) // per
    xb = np.zeros(nblk * 256, np.float32)
    for b in range(nblk):
        xb[b * 256] = 1.0
        chunk = vals[b * per:(b + 1) * per]
        xb[b * 256 + 1:b * 256 + 1 + len(chunk)] = chunk
    qb, stb = F.quantize_blockwise(torch.from_numpy(xb), code=code, blocksize=256)
    save_file({"x": torch.from_numpy(xb), "q": qb.contiguous(), "absmax": stb.absmax.float().contiguous(),
               "code": code.contiguous()}, os.path.join(outdir, "blockwise8.safetensors"))
    lines.append(f"blockwise8 blockwise8 {xb.size}")
    print(f"blockwise8: {xb.size} values next to the decision points")
    with open(os.path.join(outdir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
