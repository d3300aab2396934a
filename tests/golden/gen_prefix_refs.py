"""Independent reference for ctune's prefix tuning: PEFT's PREFIX_TUNING on tiny
random-weight models, float32, CPU, eager attention, no dropout.

usage: gen_prefix_refs.py OUTDIR          check: gen_prefix_refs.py --check OUTDIR CTUNE_OUT

Models (saved to OUTDIR/<model>/): llama (LlamaForCausalLM hidden 32, 2 layers, 4 heads,
2 KV heads: PEFT's prefix is then 2 heads x 8 wide, token_dim 16) and gpt2 (n_embd 32,
2 layers, 4 heads). Cases, each OUTDIR/<case>.prefix/ (PEFT's save_pretrained) and
OUTDIR/<case>.prefix.safetensors {ids, lens, loss, grad.<name>...}:
  <model>       PrefixTuningConfig(CAUSAL_LM, num_virtual_tokens=4), the table N(0, 1)
                (seeded); grad.prompt_embeddings = d loss / d table (4, 2*2*kv_dim).
  <model>.proj  num_virtual_tokens=3, prefix_projection=True, encoder_hidden_size=16,
                every MLP weight reset (seeded); grads of prompt_encoder.embedding.weight,
                transform.0.weight/bias, transform.2.weight/bias. Its saved adapter holds
                the MLP's output table, as PEFT saves it; w.<name> are the MLP's weights.
Two texts (lengths 7 and 10), each its own batch of one; position i predicts token i+1;
loss = summed token cross-entropy of both / 15.
--check: PEFT loads each CTUNE_OUT/<name>.prefix written by ctune (llama, gpt2 and
stories: the real stories260K exported by ctune as CTUNE_OUT/stories.hf, interleaved
RoPE in its source file) and its logits on CTUNE_OUT/<name>.ids.i32 must equal
CTUNE_OUT/<name>.logits.f32 (raw f32, (n, vocab)) to 1e-5 of their largest magnitude.
"""
import os
import sys

import numpy as np
import torch
import transformers
import peft
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_tiny import logits_vs_file, reinit  # noqa: E402


def configs():
    return {
        "llama": transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                          rms_norm_eps=1e-5, tie_word_embeddings=False),
        "gpt2": transformers.GPT2Config(vocab_size=300, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
    }


def gen(out):
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for i, (name, cfg) in enumerate(configs().items()):
        lm = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        reinit(lm, 300 + i)
        lm.save_pretrained(os.path.join(out, name), safe_serialization=True)
        for proj in (False, True):
            case = name + (".proj" if proj else "")
            base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(out, name),
                                                                     attn_implementation="eager")
            base.eval()
            pc = peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3 if proj else 4,
                                         prefix_projection=proj, encoder_hidden_size=16 if proj else None)
            pm = peft.get_peft_model(base, pc)
            g = torch.Generator().manual_seed(21 + i + (10 if proj else 0))
            params = {n.replace("prompt_encoder.default.", "prompt_encoder."): p
                      for n, p in pm.named_parameters() if p.requires_grad}
            with torch.no_grad():
                for n, p in params.items():
                    scale = 1.0 if "embedding" in n else 0.3
                    p.copy_(scale * torch.randn(p.shape, generator=g))
            pm.save_pretrained(os.path.join(out, case + ".prefix"))
            ids = [torch.randint(0, 300, (n,), generator=g) for n in (7, 10)]
            tot, cnt = 0.0, 0
            for x in ids:
                lg = pm(input_ids=x[None]).logits[0]
                tot = tot + torch.nn.functional.cross_entropy(lg[:-1], x[1:], reduction="sum")
                cnt += x.shape[0] - 1
            loss = tot / cnt
            loss.backward()
            ref = {"ids": torch.cat(ids).to(torch.int64), "lens": torch.tensor([7, 10], dtype=torch.int64),
                   "loss": loss.detach().reshape(1)}
            for n, p in params.items():
                key = "prompt_embeddings" if n == "prompt_encoder.embedding.weight" and not proj else n
                ref["grad." + key] = p.grad.contiguous()
                if proj:
                    ref["w." + key] = p.detach().contiguous()
            save_file(ref, os.path.join(out, case + ".prefix.safetensors"))
            print(f"{case}: loss {loss.item():.6f}")


def check(out, cto):
    bad = []
    for name in ("llama", "gpt2", "stories"):
        src = os.path.join(cto, "stories.hf") if name == "stories" else os.path.join(out, name)
        base = transformers.AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager")
        base.eval()
        pm = peft.PeftModel.from_pretrained(base, os.path.join(cto, name + ".prefix"))
        ids = torch.from_numpy(np.fromfile(os.path.join(cto, name + ".ids.i32"), dtype=np.int32).astype(np.int64))
        with torch.no_grad():
            lg = pm(input_ids=ids[None]).logits[0].numpy()
        logits_vs_file(lg, os.path.join(cto, name + ".logits.f32"),
                       f"{name}: PEFT on ctune's prefix adapter vs ctune's logits", bad)
    assert not bad, "PEFT does not reproduce ctune's prefix adapter: " + "; ".join(bad)


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        gen(sys.argv[1])
