#!/usr/bin/env python3
"""tests/golden/gen_tokenizer_refs.py — reference token ids from Hugging Face
`tokenizers` for tests/e2e/test_tokenizer.sh.

    gen_tokenizer_refs.py gen SHARED OUTDIR
        OUTDIR/tok/<name>/tokenizer.json   the tokenizers under test:
          gpt2      GPT2TokenizerFast from gpt2-encoder.json + gpt2-vocab.bpe
          llama2    Llama-2 tokenizer.model converted by transformers, written in
                    the Hub's layout (normalizer Prepend("▁") + Replace(" ", "▁"),
                    byte fallback, TemplateProcessing "<s> $A", unk "<unk>")
          llama2ms  the same vocabulary with the newer Metaspace(prepend_scheme
                    "first", split false) pre-tokenizer
          bl3       byte-level BPE trained here on the text files with the
                    Llama-3 Split regex, ignore_merges, "<|begin_of_text|>" BOS
          qwen      byte-level BPE trained with the Qwen2 regex and NFC, ChatML
                    special tokens, an lstrip/rstrip and a single_word added token
        OUTDIR/in/<input>.txt   texts, one per record, NUL-terminated
          (lines of each data/text file split on '\\n' only, '\\r' kept;
           alpaca: instruction, input and output of every record; edge: hand-
           written cases: special tokens in text, Unicode, digits, spaces)
        OUTDIR/ref/<name>.<input>.ids  one line of ids per record (with the
          post-processor's special tokens, as tokenizer.encode(text) gives)

        OUTDIR/ref/spm.<input>.ids  the Llama-2 vocabulary through SentencePiece
          itself (BOS + sp.encode(text); no special-token matching): the
          reference of the merge-by-score loaders (tokenizer.bin, GGUF "llama")

    gen_tokenizer_refs.py check MANIFEST
        MANIFEST lines "ids|text|text-spm strict|report LABEL REF GOT": compares
        ids files (one line per record) or NUL-separated text files record by
        record (text-spm: U+2581 in the reference read as ' ', since a
        SentencePiece vocabulary cannot tell a literal "▁" from a space),
        prints "LABEL: N records, M mismatches" and the first mismatches of
        each; exit 1 if a "strict" pair has a mismatch.
"""
import json
import os
import sys

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")

EDGE = [
    "", " ", "  ", "\t", "\r", " \r", "a", " a", "  a", "a ", "a  ", "a\tb", "a \t b", "x\r\ny",
    "Hello world", " Hello world", "Hello  world  ", "HELLO WORLD", "hello\u00a0world",
    "I'm, you're, he's, they'll, we've, I'd", "IT'S I'M YOU'RE WE'LL THEY'VE SHE'D", "don't Don't DON'T",
    "1 12 123 1234 12345 3.14159 1,000,000 2024-01-02", "٣٤٥ ½ ² Ⅻ",
    "café naïve résumé Ångström", "cafe\u0301 nai\u0308ve A\u030angstro\u0308m", "e\u0301\u0301 \u1e9b\u0323 \u0344",
    "Ελληνικά русский язык עברית العربية हिन्दी", "中文字符测试，日本語のテキスト、한국어 텍스트。",
    "emoji 😀👍🏽 👨‍👩‍👧 flags 🇫🇷", "math ∑ ∫ ≈ ≠ ∞ → ⇒", "tabs\tand\ttabs", "a\u2028b\u2029c", "x\u200by\ufeffz",
    "<s>", "</s>", "<unk>", "a<s>b", "a <s> b", " <s> ", "<s><s>", "<s>Hello", "Hello</s>", "<|endoftext|>",
    "x<|endoftext|>y", " <|endoftext|> ", "<|begin_of_text|>hi", "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|> user <|im_end|>", "foo <mask> bar", "foo<mask>bar", "hello world", "say hello", "hellohello",
    "ohello hello_ _hello hello.", "@@@ ### $$$ %%% ^^^ &&& ***", "<0x41> <0x0A>", "▁ ▁▁ a▁b", "\\n \\t \\\\",
    "http://example.com/path?q=1&r=2#frag", "def f(x):\n    return x ** 2\n", "    indented\n\tline",
    "a" * 300, "ab " * 200, " " * 50 + "x", "\n\n\nx\n\n", "z" + "\u0301" * 20,
]


def read_records(shared):
    """Input name -> list of texts."""
    out = {}
    tdir = os.path.join(shared, "data", "text")
    for f in sorted(os.listdir(tdir)):
        with open(os.path.join(tdir, f), encoding="utf-8", newline="") as fh:
            s = fh.read()
        lines = s.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        out[os.path.splitext(f)[0]] = lines
    with open(os.path.join(shared, "data", "alpaca", "alpaca_5000.json"), encoding="utf-8") as fh:
        recs = json.load(fh)
    out["alpaca"] = [r[k] for r in recs for k in ("instruction", "input", "output")]
    out["edge"] = EDGE
    return out


def make_gpt2(shared, d):
    from transformers import GPT2TokenizerFast
    tk = os.path.join(shared, "models", "tokenizers")
    g = GPT2TokenizerFast(os.path.join(tk, "gpt2-encoder.json"), os.path.join(tk, "gpt2-vocab.bpe"))
    assert len(g) == 50257, len(g)
    g.save_pretrained(d)


def make_llama2(shared, d, metaspace):
    import tempfile
    import shutil
    from transformers import LlamaTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(shared, "models", "tokenizers", "llama2-tokenizer.model"),
                    os.path.join(tmp, "tokenizer.model"))
        t = LlamaTokenizer.from_pretrained(tmp, legacy=not metaspace)
        assert len(t) == 32000, len(t)
        t.save_pretrained(tmp + "/out")
        with open(tmp + "/out/tokenizer.json", encoding="utf-8") as fh:
            j = json.load(fh)
    j["model"]["unk_token"] = "<unk>"
    if metaspace:
        j["normalizer"] = None
        j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    else:  # the layout of meta-llama/Llama-2-7b-hf's tokenizer.json
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        j["pre_tokenizer"] = None
    j["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(j, fh, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, fh)


def make_trained(texts, d, qwen):
    from tokenizers import Tokenizer, AddedToken, Regex, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    tok = Tokenizer(models.BPE(ignore_merges=not qwen))
    if qwen:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_RE if qwen else LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if qwen else ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    if qwen:
        tok.add_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False),
                        AddedToken("hello", single_word=True, normalized=False)])
    else:
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])])
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))


def gen(shared, out):
    from tokenizers import Tokenizer
    recs = read_records(shared)
    for sub in ("tok", "in", "ref"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    train = [t for k in ("tinyshakespeare", "tinystories-sample", "wikitext-2-test") for t in recs[k]]
    make_gpt2(shared, os.path.join(out, "tok", "gpt2"))
    make_llama2(shared, os.path.join(out, "tok", "llama2"), False)
    make_llama2(shared, os.path.join(out, "tok", "llama2ms"), True)
    make_trained(train, os.path.join(out, "tok", "bl3"), False)
    make_trained(train, os.path.join(out, "tok", "qwen"), True)
    for name, texts in recs.items():
        with open(os.path.join(out, "in", name + ".txt"), "wb") as fh:
            for t in texts:
                fh.write(t.encode("utf-8") + b"\0")
    for tname in ("gpt2", "llama2", "llama2ms", "bl3", "qwen"):
        tok = Tokenizer.from_file(os.path.join(out, "tok", tname, "tokenizer.json"))
        for name, texts in recs.items():
            encs = tok.encode_batch(texts)
            with open(os.path.join(out, "ref", f"{tname}.{name}.ids"), "w") as fh:
                for e in encs:
                    fh.write(" ".join(map(str, e.ids)) + "\n")
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(shared, "models", "tokenizers", "llama2-tokenizer.model"))
    for name, texts in recs.items():
        with open(os.path.join(out, "ref", f"spm.{name}.ids"), "w") as fh:
            for t in texts:
                fh.write(" ".join(map(str, [sp.bos_id()] + sp.encode(t))) + "\n")
    with open(os.path.join(out, "DONE"), "w") as fh:
        fh.write("ok\n")


def records(path, kind):
    with open(path, "rb") as fh:
        data = fh.read()
    recs = data.split(b"\n" if kind == "ids" else b"\0")
    if recs and recs[-1] == b"":
        recs.pop()
    return recs


def check(manifest, show=2):
    failed = 0
    with open(manifest) as fh:
        rows = [ln.split() for ln in fh if ln.strip()]
    for kind, mode, label, ref, got in rows:
        a, b = records(ref, kind.split("-")[0]), records(got, kind.split("-")[0])
        if kind == "text-spm":  # SentencePiece writes spaces as U+2581: a literal one decodes as ' '
            a = [r.replace("\u2581".encode(), b" ") for r in a]
        n = max(len(a), len(b))
        bad = [i for i in range(n) if i >= len(a) or i >= len(b) or a[i] != b[i]]
        flag = "" if not bad else (" FAIL" if mode == "strict" else " (reported, not a failure)")
        print(f"{label}: {n} records, {len(bad)} mismatches{flag}")
        for i in bad[:show]:
            ra = a[i][:240] if i < len(a) else b"<missing>"
            rb = b[i][:240] if i < len(b) else b"<missing>"
            print(f"    record {i + 1}: ref   {ra!r}\n    {' ' * len(str(i + 1))}          ctune {rb!r}")
        if bad and mode == "strict":
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
