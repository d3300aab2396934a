#!/usr/bin/env python3
"""tests/golden/gen_gguf.py OUTDIR [--seeds DIR]

Reference GGUF files written by gguf-py (llama.cpp's Python GGUF writer and
quantizers), read back by tests/unit/test_quant.c and test_gguf.c:

  quant.gguf  for each of F32 F16 BF16 Q8_0 Q4_0 Q4_1: tensors
                <T>.src (F32 input), <T>.q (gguf.quants.quantize(src)),
                <T>.deq (F32, gguf.quants.dequantize(q));
              general.alignment = 64.
  meta.gguf   one metadata key of every value type (incl. nested arrays)
              and a few tensors in I8/I16/I32/I64/F64.
  qwen2.gguf, gpt2.gguf, llama.gguf
              tiny model headers (llama.cpp key names via gguf-py's helpers)
              for the config reader.

With --seeds DIR it also writes small fuzzing seeds (fuzz/seeds/gguf/).
"""
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT


def write(path, w):
    w.write_header_to_file(path=Path(path))
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # read it back with gguf-py's own reader: what the C tests compare with must parse
    r = gguf.GGUFReader(str(path))
    assert len(r.tensors) > 0 or len(r.fields) > 0, f"gen_gguf: {path} reads back empty"
    return r


def quant_input(rng, rows=24, cols=256):
    """Rows of varied scale plus blocks that exercise the rounding edges."""
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x *= (10.0 ** rng.uniform(-3, 2, size=(rows, 1))).astype(np.float32)
    x[0] = 0.0                                   # all-zero blocks (d = 0)
    x[1] = 0.75                                  # constant blocks (Q4_1: max == min)
    x[2] = (np.arange(cols) % 17 - 8) * 0.5      # exact halves: round-half ties
    x[3, :32] = np.linspace(-3, 3, 32)           # +max and -max both present
    x[3, 5] = -3.0
    x[4] = rng.standard_normal(cols) * 1e-3
    x[4, 7] = 500.0                              # one outlier per row
    x[5] = -np.abs(x[5])                         # all negative
    x[6] = np.abs(x[6]) + 1.0                    # all positive, min > 0
    x[7] = rng.integers(-127, 128, cols) * 0.01  # values on a grid
    return x.astype(np.float32)


# Largest |dequantized - source| a row may show, as a fraction of the row's largest |x|:
# half a step or so of each format (Q4_0 maps -max to -8: up to a step of max/8).
ROW_ERR = {QT.F32: 0.0, QT.F16: 1e-3, QT.BF16: 8e-3, QT.Q8_0: 1 / 127, QT.Q4_0: 1 / 7, QT.Q4_1: 2 / 15}


def gen_quant(out):
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(None, "ctune-test")
    w.add_custom_alignment(64)
    srcs = {}
    for qt in (QT.F32, QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_1):
        src = quant_input(rng)
        q = gguf.quants.quantize(src, qt)
        deq = gguf.quants.dequantize(q, qt).astype(np.float32).reshape(src.shape)
        # the reference itself is sane: gguf-py's round trip stays within the format's step
        err = np.abs(deq - src).max(axis=1)
        bound = ROW_ERR[qt] * np.abs(src).max(axis=1) + 1e-30
        assert (err <= bound).all(), f"gen_gguf: {qt.name} round trip error {err.max():.3g} beyond its step"
        srcs[f"{qt.name}.src"] = src
        name = qt.name
        w.add_tensor(f"{name}.src", src)
        if q.dtype == np.uint8:
            w.add_tensor(f"{name}.q", q, raw_dtype=qt)
        else:
            w.add_tensor(f"{name}.q", q)
        w.add_tensor(f"{name}.deq", deq)
    r = write(out / "quant.gguf", w)
    back = {t.name: np.asarray(t.data).reshape(-1) for t in r.tensors if t.name in srcs}
    assert set(back) == set(srcs), f"gen_gguf: quant.gguf reads back {sorted(back)}"
    for name, src in srcs.items():
        assert np.array_equal(back[name], src.reshape(-1)), f"gen_gguf: {name} reads back changed"


def gen_meta(out):
    w = gguf.GGUFWriter(None, "ctune-test")
    w.add_key_value("test.u8", 200, VT.UINT8)
    w.add_key_value("test.i8", -100, VT.INT8)
    w.add_key_value("test.u16", 60000, VT.UINT16)
    w.add_key_value("test.i16", -30000, VT.INT16)
    w.add_key_value("test.u32", 4000000000, VT.UINT32)
    w.add_key_value("test.i32", -2000000000, VT.INT32)
    w.add_key_value("test.u64", 2**40, VT.UINT64)
    w.add_key_value("test.i64", -5, VT.INT64)
    w.add_key_value("test.f32", 0.15625, VT.FLOAT32)
    w.add_key_value("test.f64", 2.5, VT.FLOAT64)
    w.add_key_value("test.bool", True, VT.BOOL)
    w.add_key_value("test.str", "h\u00e9llo w\u00f6rld", VT.STRING)
    w.add_key_value("test.arr_i32", [1, -2, 3], VT.ARRAY, VT.INT32)
    w.add_key_value("test.arr_f32", [0.5, -1.25], VT.ARRAY, VT.FLOAT32)
    w.add_key_value("test.arr_str", ["a", "", "xyz"], VT.ARRAY, VT.STRING)
    w.add_key_value("test.arr_u8", [7, 8, 9, 10], VT.ARRAY, VT.UINT8)
    w.add_key_value("test.nested", [[1, 2], [3, 4, 5]], VT.ARRAY, VT.ARRAY)
    w.add_key_value("test.nested_str", [["x", "yy"], ["zzz"]], VT.ARRAY, VT.ARRAY)
    w.add_key_value("test.after", 77, VT.UINT32)   # must still be found after the nested arrays
    w.add_tensor("i8", np.array([[-128, 127, 0], [1, 2, 3]], dtype=np.int8))
    w.add_tensor("i16", np.array([-32768, 32767], dtype=np.int16))
    w.add_tensor("i32", np.array([-7, 123456], dtype=np.int32))
    w.add_tensor("i64", np.array([2**40, -1], dtype=np.int64))
    w.add_tensor("f64", np.array([[0.1, -2.0]], dtype=np.float64))
    write(out / "meta.gguf", w)


def tiny_model(out, arch, qkv_bias, rms, extra):
    rng = np.random.default_rng(7)
    C, H, NH, KV, V, L = 64, 128, 4, 2, 96, 2
    w = gguf.GGUFWriter(None, arch)
    w.add_context_length(1024)
    w.add_embedding_length(C)
    w.add_block_count(L)
    w.add_feed_forward_length(H)
    w.add_head_count(NH)
    if arch != "gpt2":
        w.add_head_count_kv(KV)
        w.add_rope_dimension_count(C // NH)
        w.add_rope_freq_base(1000000.0)
    if rms:
        w.add_layer_norm_rms_eps(1e-6)
    else:
        w.add_layer_norm_eps(1e-5)
    w.add_bos_token_id(11)
    w.add_eos_token_id(12)
    extra(w)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    w.add_tensor("token_embd.weight", f(V, C))
    w.add_tensor("output_norm.weight", f(C))
    if qkv_bias:
        w.add_tensor("blk.0.attn_q.bias", f(C))
    if arch == "llama":
        w.add_tensor("output.weight", f(V, C))
    write(out / f"{arch}.gguf", w)


def gen_seeds(d):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    w = gguf.GGUFWriter(None, "llama")
    w.add_block_count(1)
    w.add_key_value("tokenizer.ggml.tokens", ["<unk>", "a", "bb"], VT.ARRAY, VT.STRING)
    w.add_key_value("n", [[1, 2], [3]], VT.ARRAY, VT.ARRAY)
    w.add_tensor("a", rng.standard_normal((2, 32)).astype(np.float32))
    w.add_tensor("b", gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), QT.Q8_0),
                 raw_dtype=QT.Q8_0)
    w.add_tensor("c", gguf.quants.quantize(rng.standard_normal((1, 32)).astype(np.float32), QT.Q4_1),
                 raw_dtype=QT.Q4_1)
    write(d / "small.gguf", w)
    w = gguf.GGUFWriter(None, "qwen2")
    w.add_custom_alignment(16)
    w.add_tensor("t", np.zeros(4, dtype=np.float16))
    write(d / "align16.gguf", w)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    gen_quant(out)
    gen_meta(out)
    tiny_model(out, "qwen2", True, True, lambda w: w.add_key_length(16))
    tiny_model(out, "gpt2", False, False, lambda w: None)
    tiny_model(out, "llama", False, True, lambda w: w.add_sliding_window(256))
    if len(sys.argv) > 3 and sys.argv[2] == "--seeds":
        gen_seeds(Path(sys.argv[3]))
    print(f"gen_gguf: wrote {sorted(p.name for p in out.glob('*.gguf'))}")


if __name__ == "__main__":
    main()
