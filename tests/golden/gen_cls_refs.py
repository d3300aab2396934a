"""Independent reference for ctune's sequence classification (frozen base +
linear head): transformers' *ForSequenceClassification on tiny random-weight
models, float32, CPU, eval mode.

usage: gen_cls_refs.py OUTDIR

For each model (llama: LlamaForCausalLM hidden 32, intermediate 64, 2 layers, 4 heads,
2 KV heads, vocab 300, untied; gpt2: GPT2LMHeadModel n_embd 32, 2 layers, 4 heads,
vocab 300), saved with save_pretrained to OUTDIR/<name>/ and loaded back as
AutoModelForSequenceClassification(num_labels=3), whose `score` (3, 32, no bias) is
set to N(0, 0.3) (seeded):
  4 texts (token ids, lengths 5, 9, 3, 12; none contains the pad id, each run as its
  own batch of one, so the pooled token is the last one), labels [0, 2, 1, 2];
  feature = the base model's last_hidden_state at the last token (after the final
  norm), logits = score(feature) (what the model returns for the last token),
  loss = mean cross-entropy over the 4, grad = d loss / d score.weight (the base
  frozen: requires_grad False).
Files: OUTDIR/<name>.cls.safetensors {ids (concatenated, int64), lens (4), labels (4),
score (3, 32), features (4, 32), logits (4, 3), loss (1), grad (3, 32)}.
Self-check: the returned logits equal score(feature) to 1e-6.
LoRA + head (PEFT SEQ_CLS, r 4, alpha 8, q_proj/v_proj or c_attn, lora_B N(0, 0.1)):
OUTDIR/<name>.seqcls/ (save_pretrained: lora tensors + base_model.model.score.weight)
and OUTDIR/<name>.seqcls.safetensors {loss (1), and every trainable gradient under its
file name}. --check OUTDIR CTUNE_OUT: PEFT loads CTUNE_OUT/<name>.seqcls and its logits
for the 4 texts equal CTUNE_OUT/<name>.seqcls.logits.f32 (4, 3).
Full fine-tuning + head: the same *ForSequenceClassification with every parameter
trainable (score as above, id2label neg/neutral/pos): OUTDIR/<name>.full/ (its
save_pretrained: transformers' own classifier directory, for ctune's loader) and
OUTDIR/<name>.full.safetensors {loss, and the gradient of every parameter under its
name}. --check: transformers loads CTUNE_OUT/<name>.full (written by ctune) and its
logits equal CTUNE_OUT/<name>.full.logits.f32 (4, 3).
"""
import os
import sys

import torch
import peft
import transformers
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_tiny import logits_vs_file, reinit  # noqa: E402


def configs():
    return {
        "llama": transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                          rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=299,
                                          bos_token_id=1, eos_token_id=2),
        "gpt2": transformers.GPT2Config(vocab_size=300, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=299),
    }


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    lens = [5, 9, 3, 12]
    labels = torch.tensor([0, 2, 1, 2])
    for i, (name, cfg) in enumerate(configs().items()):
        lm = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        reinit(lm, 100 + i)
        lm.save_pretrained(os.path.join(out, name), safe_serialization=True)
        m = transformers.AutoModelForSequenceClassification.from_pretrained(os.path.join(out, name), num_labels=3,
                                                                            attn_implementation="eager")
        m.eval()
        g = torch.Generator().manual_seed(7 + i)
        for p in m.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            m.score.weight.copy_(0.3 * torch.randn(m.score.weight.shape, generator=g))
        m.score.weight.requires_grad_(True)
        base = m.model if name == "llama" else m.transformer
        ids = [torch.randint(3, 299, (n,), generator=g) for n in lens]
        feats, logits = [], []
        for x in ids:
            o = m(input_ids=x[None])
            h = base(input_ids=x[None]).last_hidden_state[0, -1]
            assert torch.allclose(o.logits[0], m.score(h), atol=1e-6), "pooled logits differ"
            feats.append(h)
            logits.append(o.logits[0])
        lg = torch.stack(logits)
        loss = torch.nn.functional.cross_entropy(lg, labels)
        loss.backward()
        save_file({"ids": torch.cat(ids).to(torch.int64), "lens": torch.tensor(lens, dtype=torch.int64),
                   "labels": labels.to(torch.int64), "score": m.score.weight.detach().contiguous(),
                   "features": torch.stack(feats).detach().contiguous(), "logits": lg.detach().contiguous(),
                   "loss": loss.detach().reshape(1), "grad": m.score.weight.grad.contiguous()},
                  os.path.join(out, name + ".cls.safetensors"))
        print(f"{name}: loss {loss.item():.6f}")
        # LoRA + head through PEFT
        m2 = transformers.AutoModelForSequenceClassification.from_pretrained(os.path.join(out, name), num_labels=3,
                                                                             attn_implementation="eager")
        m2.eval()
        with torch.no_grad():
            m2.score.weight.copy_(m.score.weight.detach())
        tg = ["q_proj", "v_proj"] if name == "llama" else ["c_attn"]
        pm = peft.get_peft_model(m2, peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0,
                                                     target_modules=tg, fan_in_fan_out=name == "gpt2"))
        with torch.no_grad():
            for n_, p_ in pm.named_parameters():
                if "lora_B" in n_:
                    p_.copy_(0.1 * torch.randn(p_.shape, generator=g))
        pm.save_pretrained(os.path.join(out, name + ".seqcls"))
        lg2 = torch.stack([pm(input_ids=x[None]).logits[0] for x in ids])
        loss2 = torch.nn.functional.cross_entropy(lg2, labels)
        loss2.backward()
        grads = {"loss": loss2.detach().reshape(1)}
        for n_, p_ in pm.named_parameters():
            if p_.requires_grad and p_.grad is not None:
                key = n_.replace(".modules_to_save.default.weight", ".weight").replace(".default.weight", ".weight")
                if "original_module" in key:
                    continue
                grads[key] = p_.grad.contiguous()
        save_file(grads, os.path.join(out, name + ".seqcls.safetensors"))
        print(f"{name}: LoRA + head loss {loss2.item():.6f}, {len(grads) - 1} gradients")
        # full fine-tuning + head
        m3 = transformers.AutoModelForSequenceClassification.from_pretrained(
            os.path.join(out, name), num_labels=3, id2label={0: "neg", 1: "neutral", 2: "pos"},
            attn_implementation="eager")
        m3.eval()
        with torch.no_grad():
            m3.score.weight.copy_(m.score.weight.detach())
        m3.save_pretrained(os.path.join(out, name + ".full"), safe_serialization=True)
        lg3 = torch.stack([m3(input_ids=x[None]).logits[0] for x in ids])
        loss3 = torch.nn.functional.cross_entropy(lg3, labels)
        loss3.backward()
        grads = {"loss": loss3.detach().reshape(1)}
        for n_, p_ in m3.named_parameters():
            grads[n_] = p_.grad.contiguous()
        save_file(grads, os.path.join(out, name + ".full.safetensors"))
        print(f"{name}: full + head loss {loss3.item():.6f}, {len(grads) - 1} gradients")


def check(out, cto):
    bad = []
    for name in configs():
        base = transformers.AutoModelForSequenceClassification.from_pretrained(
            os.path.join(out, name), num_labels=3, attn_implementation="eager")
        pm = peft.PeftModel.from_pretrained(base, os.path.join(cto, name + ".seqcls"))
        pm.eval()
        from safetensors.torch import load_file
        r = load_file(os.path.join(out, name + ".cls.safetensors"))
        ids, lens = r["ids"], r["lens"].tolist()
        xs, o = [], 0
        for n in lens:
            xs.append(ids[o:o + n])
            o += n
        with torch.no_grad():
            lg = torch.stack([pm(input_ids=x[None]).logits[0] for x in xs]).numpy()
        logits_vs_file(lg, os.path.join(cto, name + ".seqcls.logits.f32"),
                       f"{name}: PEFT on ctune's LoRA + head adapter vs ctune's logits", bad)
        full = transformers.AutoModelForSequenceClassification.from_pretrained(
            os.path.join(cto, name + ".full"), attn_implementation="eager")
        full.eval()
        with torch.no_grad():
            lg = torch.stack([full(input_ids=x[None]).logits[0] for x in xs]).numpy()
        logits_vs_file(lg, os.path.join(cto, name + ".full.logits.f32"),
                       f"{name}: transformers on ctune's full + head directory vs ctune's logits", bad)
        print(f"{name}: labels {full.config.id2label}")
        if full.config.id2label != {0: "neg", 1: "neutral", 2: "pos"}:
            bad.append(f"{name} full: labels {full.config.id2label}")
    assert not bad, "transformers/PEFT do not reproduce ctune's classifiers: " + "; ".join(bad)


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        main()
