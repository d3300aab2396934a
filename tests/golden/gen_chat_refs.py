#!/usr/bin/env python3
"""Reference chat renderings from Hugging Face transformers' apply_chat_template.

usage: gen_chat_refs.py OUTDIR [SMOLLM2.gguf]

Writes OUTDIR/chat_refs.json: the templates ("name" -> template text, bos and
eos token texts; "smollm2" is the GGUF's own template, loaded with
AutoTokenizer.from_pretrained(dir, gguf_file=...) when the file is given) and
cases: template, messages, add_generation_prompt, and the rendered text, or
"error": true where the template raises. tests/unit/test_chat_hf.c renders
each case with ctune and compares byte for byte. The hand-written templates
are those the model families publish (as their tokenizer_config.json decodes).
"""
import json
import os
import sys

from transformers import AutoTokenizer, PreTrainedTokenizerFast

# --- the families' published templates ---------------------------------------------
QWEN2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
         "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
          "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
          "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
          "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "{% if loop.index0 == 0 and system_message != false %}"
          "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
          "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
          "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
          "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
MISTRAL = ("{{ bos_token }}{% for message in messages %}"
           "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
           "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
           "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
           "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
           "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
          "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
          "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
          "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
ZEPHYR = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
          "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
          "{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
          "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
          "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")

TEMPLATES = {
    "qwen2": (QWEN2, "", "<|im_end|>"),
    "chatml": (CHATML, "", "<|im_end|>"),
    "llama2": (LLAMA2, "<s>", "</s>"),
    "mistral": (MISTRAL, "<s>", "</s>"),
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    "zephyr": (ZEPHYR, "<s>", "</s>"),
}

def m(role, content):
    return {"role": role, "content": content}

CONVERSATIONS = [
    ([m("user", "What is the capital of France?")], True),
    ([m("system", "You are terse."), m("user", "Hi!")], True),
    ([m("user", "2+2?"), m("assistant", "4."), m("user", "And 3+3?"), m("assistant", "6.")], False),
    ([m("system", "Be kind."), m("user", "Hello"), m("assistant", "Hi, how can I help?"), m("user", "Tell me a joke")], True),
    ([m("user", "  padded question \n"), m("assistant", " padded answer. \n")], False),
    ([m("system", "  sys with spaces  "), m("user", "\n")], False),
    ([m("user", "Ünïcödé ✓ 日本語"), m("assistant", "ok — 好")], True),
    ([m("user", "one"), m("user", "two")], False),
    ([m("assistant", "I start.")], False),
]


def render(tok, tmpl, bos, eos, msgs, gen):
    tok.chat_template = tmpl
    try:
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen,
                                       bos_token=bos, eos_token=eos)
    except Exception as e:  # the template raised (roles not alternating, ...)
        return e


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gguf = sys.argv[2] if len(sys.argv) > 2 and os.path.exists(sys.argv[2]) else None
    templates = {k: {"template": t, "bos": b, "eos": e} for k, (t, b, e) in TEMPLATES.items()}
    if gguf:
        tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
        templates["smollm2"] = {"template": tok.chat_template, "bos": tok.bos_token or "", "eos": tok.eos_token or ""}
    else:
        tok = PreTrainedTokenizerFast(tokenizer_object=__import__("tokenizers").Tokenizer(
            __import__("tokenizers").models.BPE()))
    cases = []
    for name, t in templates.items():
        for msgs, gen in CONVERSATIONS:
            r = render(tok, t["template"], t["bos"], t["eos"], msgs, gen)
            c = {"template": name, "messages": msgs, "add_generation_prompt": gen}
            if isinstance(r, Exception):
                c["error"] = True
            else:
                c["text"] = r
            cases.append(c)
    # every template must render something: a template that only raises (or a
    # broken transformers) would leave the C side nothing to compare
    for name in templates:
        if not any(c["template"] == name and "text" in c for c in cases):
            raise SystemExit(f"gen_chat_refs: template '{name}' rendered no conversation")
    with open(os.path.join(out, "chat_refs.json"), "w", encoding="utf-8") as f:
        json.dump({"templates": templates, "cases": cases}, f, ensure_ascii=False, indent=1)
    print(f"{len(cases)} cases, {len(templates)} templates{'' if gguf else ' (no SmolLM2 GGUF)'}")


if __name__ == "__main__":
    main()
