#!/usr/bin/env python3
"""tests/golden/check_tokenizer_export.py OUT — check the Hugging Face files
that ctune's ct__tokenizer_write_hf wrote (tests/unit/test_tokenizer_export.c
with CTUNE_TOKEXPORT_OUT=OUT) against ctune's own ids.

For every tokenizer in OUT/manifest.txt ("name n_before n_after"):
  * `tokenizers` Tokenizer.from_file(OUT/name/tokenizer.json).encode(text)
    and transformers AutoTokenizer.from_pretrained(OUT/name)(text) must give
    exactly the ids in OUT/name.ids.txt (one line per record of
    OUT/texts.jsonl), special tokens added as ctune adds them by default;
  * decode round trip: where ctune's decode(ids) == text (OUT/name.rt.txt),
    both decoders must give the text back from the ids without the template
    ids (skip_special_tokens=False, no clean-up);
  * a chat template in tokenizer_config.json must render (apply_chat_template).
Prints each mismatch (first 5 per check and tokenizer) and a summary line;
exits 1 on any mismatch.

make-ggufs GPT2_GGUF DIR: write vocabulary-only GGUF variants of the GPT-2
vocabulary with other tokenizer.ggml.pre names (llama-bpe: Llama-3 regex,
ignore_merges, BOS added; qwen2; gpt-4o with add_eos_token), for the driver's
CTUNE_TOKEXPORT_SOURCES; prints "name=path" words.
"""
import json
import os
import sys


VARIANTS = [  # name, tokenizer.ggml.pre, add_bos_token, add_eos_token
    ("llama3-gguf", "llama-bpe", True, False),
    ("qwen2-gguf", "qwen2", False, False),
    ("gpt4o-gguf", "gpt-4o", False, True),
]


def make_ggufs(src, d):
    import gguf

    r = gguf.GGUFReader(src)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    os.makedirs(d, exist_ok=True)
    words = []
    for name, pre, bos, eos in VARIANTS:
        path = os.path.join(d, name + ".gguf")
        w = gguf.GGUFWriter(path, "gpt2")
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(50256)
        w.add_eos_token_id(50256)
        w.add_add_bos_token(bos)
        w.add_add_eos_token(eos)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        words.append(f"{name}={path}")
    print(" ".join(words))
    return 0


def main():
    if sys.argv[1] == "make-ggufs":
        return make_ggufs(sys.argv[2], sys.argv[3])
    out = sys.argv[1]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    with open(os.path.join(out, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    with open(os.path.join(out, "manifest.txt")) as f:
        manifest = [line.split() for line in f if line.strip()]
    fails = 0
    for name, n_pre, n_post in manifest:
        n_pre, n_post = int(n_pre), int(n_post)
        d = os.path.join(out, name)
        with open(os.path.join(out, name + ".ids.txt")) as f:
            ref = [[int(x) for x in line.split()] for line in f.read().split("\n")[: len(texts)]]
        with open(os.path.join(out, name + ".rt.txt")) as f:
            rt = [line.strip() == "1" for line in f]
        assert len(ref) == len(texts) == len(rt), (name, len(ref), len(texts), len(rt))
        tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        at = AutoTokenizer.from_pretrained(d)
        got_tk = [e.ids for e in tk.encode_batch(texts, add_special_tokens=True)]
        got_at = at(texts, add_special_tokens=True)["input_ids"]
        counts = {}

        def bad(check, i, want, got):
            nonlocal fails
            fails += 1
            counts[check] = counts.get(check, 0) + 1
            if counts[check] <= 5:
                print(f"MISMATCH {name} {check} record {i} {texts[i][:80]!r}\n  ctune: {want}\n  hf:    {got}")

        for i, want in enumerate(ref):
            if got_tk[i] != want:
                bad("tokenizers-ids", i, want, got_tk[i])
            if list(got_at[i]) != want:
                bad("AutoTokenizer-ids", i, want, list(got_at[i]))
        n_rt = 0
        for i, want in enumerate(ref):
            if not rt[i]:
                continue
            n_rt += 1
            core = want[n_pre: len(want) - n_post]
            s1 = tk.decode(core, skip_special_tokens=False)
            s2 = at.decode(core, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            if s1 != texts[i]:
                bad("tokenizers-decode", i, repr(texts[i]), repr(s1))
            if s2 != texts[i]:
                bad("AutoTokenizer-decode", i, repr(texts[i]), repr(s2))
        chat = ""
        with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        if cfg.get("chat_template"):
            msgs = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
            try:
                r = at.apply_chat_template(msgs, tokenize=False)
                assert isinstance(r, str) and "Hi there" in r
                chat = ", chat template renders"
            except Exception as e:  # noqa: BLE001 - report any failure of the template
                fails += 1
                print(f"MISMATCH {name} chat-template: {e}")
        print(f"{name}: {len(texts)} records, ids {'equal' if not any(k.endswith('ids') for k in counts) else 'DIFFER'}"
              f" (tokenizers, AutoTokenizer), {n_rt} decode round trips"
              f" {'equal' if not any(k.endswith('decode') for k in counts) else 'DIFFER'}{chat}"
              + (f"; mismatches {counts}" if counts else ""))
    print(f"check_tokenizer_export: {len(manifest)} tokenizers, {fails} mismatches")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
