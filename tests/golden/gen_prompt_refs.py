"""Independent reference for ctune's prompt tuning: PEFT's PROMPT_TUNING on tiny
random-weight models, float32, CPU, eval-mode dropout (none in these configs).

usage: gen_prompt_refs.py OUTDIR          check: gen_prompt_refs.py --check OUTDIR CTUNE_OUT

For llama (LlamaForCausalLM hidden 32, intermediate 64, 2 layers, 4 heads, 2 KV heads,
vocab 300, untied) and gpt2 (n_embd 32, 2 layers, 4 heads, vocab 300), saved to
OUTDIR/<name>/: get_peft_model(PromptTuningConfig(CAUSAL_LM, num_virtual_tokens=4,
RANDOM)), prompt_encoder embedding set to N(0, 1) (seeded), saved with save_pretrained
to OUTDIR/<name>.prompt/. Two texts (lengths 7 and 10), each its own batch of one;
labels = the ids with the first one masked (-100), so the last virtual token predicts
nothing and text position i predicts token i+1, as ctune's targets. Loss = the sum of
the token cross-entropies of both texts / their count (13); grad = d loss / d
prompt_embeddings. OUTDIR/<name>.prompt.safetensors {ids (int64, concatenated), lens,
loss (1), grad (4, 32)}.
--check: PEFT loads CTUNE_OUT/<name>.prompt (written by ctune) and its logits for
text 0 at the text positions must equal CTUNE_OUT/<name>.logits.f32 (raw f32, (7, 300)).
"""
import os
import sys

import torch
import transformers
import peft
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_tiny import logits_vs_file, reinit  # noqa: E402

K = 4


def configs():
    return {
        "llama": transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                          rms_norm_eps=1e-5, tie_word_embeddings=False),
        "gpt2": transformers.GPT2Config(vocab_size=300, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
    }


def text_logits(pm, x):
    lg = pm(input_ids=x[None]).logits[0]
    return lg[K:] if lg.shape[0] == K + x.shape[0] else lg


def gen(out):
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for i, (name, cfg) in enumerate(configs().items()):
        lm = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        reinit(lm, 200 + i)
        lm.save_pretrained(os.path.join(out, name), safe_serialization=True)
        lm.eval()
        pm = peft.get_peft_model(lm, peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=K))
        g = torch.Generator().manual_seed(11 + i)
        emb = pm.prompt_encoder["default"].embedding.weight
        with torch.no_grad():
            emb.copy_(torch.randn(emb.shape, generator=g))
        pm.save_pretrained(os.path.join(out, name + ".prompt"))
        # the reference adapter is what PEFT reads back: same logits from the saved files
        x0 = torch.arange(3, 10)
        back = peft.PeftModel.from_pretrained(
            transformers.AutoModelForCausalLM.from_pretrained(os.path.join(out, name), attn_implementation="eager").eval(),
            os.path.join(out, name + ".prompt"))
        with torch.no_grad():
            assert torch.equal(text_logits(pm, x0), text_logits(back, x0)), f"{name}: PEFT's saved prompt adapter differs"

        ids = [torch.randint(0, 300, (n,), generator=g) for n in (7, 10)]
        tot, cnt = 0.0, 0
        for x in ids:
            labels = x.clone()
            labels[0] = -100
            lg = pm(input_ids=x[None]).logits[0]
            lg = lg[K:] if lg.shape[0] == K + x.shape[0] else lg
            tot = tot + torch.nn.functional.cross_entropy(lg[:-1], labels[1:], reduction="sum")
            cnt += int((labels[1:] >= 0).sum())
        loss = tot / cnt
        loss.backward()
        save_file({"ids": torch.cat(ids).to(torch.int64), "lens": torch.tensor([7, 10], dtype=torch.int64),
                   "loss": loss.detach().reshape(1), "grad": emb.grad.contiguous()},
                  os.path.join(out, name + ".prompt.safetensors"))
        assert torch.isfinite(loss) and torch.isfinite(emb.grad).all(), f"{name}: the reference loss is not finite"
        print(f"{name}: loss {loss.item():.6f}")


def check(out, cto):
    from safetensors.torch import load_file
    bad = []
    for name in configs():
        base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(out, name), attn_implementation="eager")
        base.eval()
        pm = peft.PeftModel.from_pretrained(base, os.path.join(cto, name + ".prompt"))
        ids = load_file(os.path.join(out, name + ".prompt.safetensors"))["ids"][:7]
        with torch.no_grad():
            lg = text_logits(pm, ids).numpy()
        logits_vs_file(lg, os.path.join(cto, name + ".logits.f32"),
                       f"{name}: PEFT on ctune's prompt adapter vs ctune's logits", bad)
    assert not bad, "PEFT does not reproduce ctune's prompt adapter: " + "; ".join(bad)


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        gen(sys.argv[1])
