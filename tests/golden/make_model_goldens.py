#!/usr/bin/env python3
"""Creates tiny random checkpoints of every supported architecture and HF transformers' reference
outputs for them (tests/data/models/<case>/).

Runs where PyTorch + transformers (5.x) + safetensors are installed; needs no network:
    python3 tests/golden/make_model_goldens.py [OUT_DIR]     (default: tests/data/models)

Each case folder holds a loadable HF checkpoint (config.json in the form the case names, weights
as model.safetensors or shards with model.safetensors.index.json) and:
  golden.json          what the case covers, sizes, eos ids, generation length, transformers version
  golden.safetensors   input_ids.{i}      int64 [T_i]        prompt tokens of sequence i
                       hidden_states.{i}  float32 [L+1,T_i,H] HF's hidden_states tuple, stacked
                       block_output.{i}   float32 [T_i,H]     raw output of the last decoder block
                       logits.{i}         float32 [T_i,V]     HF's logits
                       greedy.{i}         int64 [n]           new tokens of HF greedy generate()
The reference is computed by reloading the written folder with HF, so it reflects exactly what
HF does with these files. Everything is float32 on CPU with eager attention.
"""
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM

SEQ_LENGTHS = [5, 11, 17]     # Gemma's test window (6) is shorter than the last two
MAX_NEW_TOKENS = 10
VOCAB = 256

TINY = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            bos_token_id=1, eos_token_id=2, pad_token_id=0)


def llama3_new():
    cfg = dict(TINY, model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=500000.0,
               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
               tie_word_embeddings=False, rms_norm_eps=1e-5)
    return cfg, dict(form="new", storage="bfloat16", notes="Llama 3 rope scaling, GQA 4/2, untied")


def llama_linear_old():
    cfg = dict(TINY, model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=10000.0,
               rope_scaling={"type": "linear", "factor": 2.0}, tie_word_embeddings=True,
               num_key_value_heads=4, rms_norm_eps=1e-6)
    return cfg, dict(form="old", storage="float32", notes="linear rope scaling ('type' key), tied, MHA")


def qwen2_old_sharded():
    cfg = dict(TINY, model_type="qwen2", architectures=["Qwen2ForCausalLM"], rope_theta=1000000.0,
               tie_word_embeddings=True, rms_norm_eps=1e-6, use_sliding_window=False,
               sliding_window=None, max_window_layers=4)
    return cfg, dict(form="old", storage="float32", shard="120KB",
                     notes="q/k/v bias, tied, sharded safetensors with index")


def qwen3_new():
    cfg = dict(TINY, model_type="qwen3", architectures=["Qwen3ForCausalLM"], rope_theta=1000000.0,
               head_dim=24, tie_word_embeddings=False, rms_norm_eps=1e-6, attention_bias=False,
               use_sliding_window=False, sliding_window=None, max_window_layers=4)
    return cfg, dict(form="new", storage="bfloat16",
                     notes="q/k RMSNorm, GQA 4/2, head_dim 24 != hidden/heads, untied")


GEMMA_TEXT = dict(TINY, model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
                  num_hidden_layers=6, head_dim=16, query_pre_attn_scalar=24, sliding_window=6,
                  sliding_window_pattern=3, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                  rope_scaling={"rope_type": "linear", "factor": 8.0}, rms_norm_eps=1e-6,
                  hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                  final_logit_softcapping=None, attn_logit_softcapping=None)


def gemma3_text_new():
    return dict(GEMMA_TEXT), dict(form="new", storage="bfloat16",
                                  notes="Gemma3ForCausalLM, window 6, pattern 3 (layers 2 and 5 global)")


def gemma3_text_old():
    return dict(GEMMA_TEXT), dict(form="old", storage="float32",
                                  notes="same model in the published config form")


def gemma3_multimodal(form):
    text = {k: v for k, v in GEMMA_TEXT.items() if k not in ("architectures",)}
    text["model_type"] = "gemma3_text"
    vision = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                  num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14,
                  num_channels=3)
    cfg = dict(model_type="gemma3", architectures=["Gemma3ForConditionalGeneration"],
               text_config=text, vision_config=vision, mm_tokens_per_image=1,
               boi_token_index=253, eoi_token_index=254, image_token_index=255,
               bos_token_id=1, eos_token_id=[2, 106 % VOCAB], pad_token_id=0)
    return cfg, dict(form=form, storage="bfloat16",
                     notes="Gemma3ForConditionalGeneration text tower; vision weights present")


CASES = {
    "llama3_new": llama3_new,
    "llama_linear_old": llama_linear_old,
    "qwen2_old_sharded": qwen2_old_sharded,
    "qwen3_new": qwen3_new,
    "gemma3_text_new": gemma3_text_new,
    "gemma3_text_old": gemma3_text_old,
    "gemma3_mm_published": lambda: gemma3_multimodal("old"),
    "gemma3_mm_new": lambda: gemma3_multimodal("new"),
}


def old_form(cfg):
    """The config.json published checkpoints carry (transformers 4.x keys)."""
    out = json.loads(json.dumps(cfg))
    if out.get("model_type") == "gemma3":
        # Published gemma-3 text_config leaves most keys at their defaults: omit the ones whose
        # defaults we rely on so the loader's defaults are tested too.
        for k in ("rope_theta", "rope_local_base_freq", "rms_norm_eps", "hidden_activation",
                  "final_logit_softcapping", "attn_logit_softcapping"):
            out["text_config"].pop(k, None)
    out["transformers_version"] = "4.50.0"
    out["torch_dtype"] = "bfloat16"
    return out


def publish_layout(state):
    """Renames transformers-5 Gemma3ForConditionalGeneration keys to the published 4.x layout."""
    renamed = {}
    for k, v in state.items():
        if k.startswith("model.language_model."):
            k = "language_model.model." + k[len("model.language_model."):]
        elif k.startswith("model.vision_tower."):
            k = "vision_tower." + k[len("model.vision_tower."):]
        elif k.startswith("model.multi_modal_projector."):
            k = "multi_modal_projector." + k[len("model.multi_modal_projector."):]
        elif k == "lm_head.weight":
            k = "language_model.lm_head.weight"
        renamed[k] = v
    return renamed


def build_case(name, out_root):
    cfg_dict, meta = CASES[name]()
    case_dir = os.path.join(out_root, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    torch.manual_seed(1234)

    # Build the model from the old-form dict (HF converts it to its own form).
    tmp = case_dir + ".cfg"
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(old_form(cfg_dict), f)
    config = AutoConfig.from_pretrained(tmp)
    shutil.rmtree(tmp)
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config) if cfg_dict["model_type"] != "gemma3" else \
        transformers.Gemma3ForConditionalGeneration(config)
    # Random weights with some spread (norm weights included, so offsets matter).
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.3 + (0.0 if "gemma" in cfg_dict["model_type"] else 1.0))
            else:
                p.copy_(torch.randn_like(p) * 0.08)
    model = model.to(getattr(torch, meta["storage"])).to(torch.float32)
    model.eval()

    save_kwargs = dict(safe_serialization=True)
    if "shard" in meta:
        save_kwargs["max_shard_size"] = meta["shard"]
    model.to(getattr(torch, meta["storage"])).save_pretrained(case_dir, **save_kwargs)
    for extra in ("generation_config.json",):
        p = os.path.join(case_dir, extra)
        if os.path.exists(p) and name.startswith("llama_linear"):
            os.remove(p)  # one case without generation_config.json

    with open(os.path.join(case_dir, "config.json")) as f:
        written = json.load(f)
    if meta["form"] == "old":
        with open(os.path.join(case_dir, "config.json"), "w") as f:
            json.dump(old_form(cfg_dict), f, indent=2)
    if name == "gemma3_mm_published":
        path = os.path.join(case_dir, "model.safetensors")
        save_file(publish_layout(load_file(path)), path, metadata={"format": "pt"})

    # Reference: reload exactly what was written.
    if cfg_dict["model_type"] == "gemma3":
        ref = transformers.Gemma3ForConditionalGeneration.from_pretrained(
            case_dir, dtype=torch.float32, attn_implementation="eager")
        decoder_layers = ref.model.language_model.layers
    else:
        ref = AutoModelForCausalLM.from_pretrained(case_dir, dtype=torch.float32,
                                                   attn_implementation="eager")
        decoder_layers = ref.model.layers
    ref.eval()
    # The reloaded weights must equal the model we built (catches silent key-mapping misses).
    want = {k: v.float() for k, v in model.state_dict().items()}
    got = ref.state_dict()
    for k, v in want.items():
        if k in got:
            assert torch.equal(got[k].float(), v.to(torch.float32)), f"{name}: {k} changed on reload"

    gen = torch.Generator().manual_seed(99)
    tensors = {}
    captured = {}
    hook = decoder_layers[-1].register_forward_hook(
        lambda m, i, o: captured.__setitem__("out", (o[0] if isinstance(o, tuple) else o).detach()))
    for i, T in enumerate(SEQ_LENGTHS):
        ids = torch.randint(3, VOCAB - 3, (T,), generator=gen)
        ids[0] = 1  # BOS
        with torch.no_grad():
            out = ref(input_ids=ids[None], output_hidden_states=True)
            full = ref.generate(input_ids=ids[None], attention_mask=torch.ones(1, T, dtype=torch.long),
                                max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=0)
        tensors[f"input_ids.{i}"] = ids.clone().to(torch.int64)
        tensors[f"hidden_states.{i}"] = torch.stack([h[0] for h in out.hidden_states]).float().contiguous()
        tensors[f"block_output.{i}"] = captured["out"][0].float().contiguous()
        tensors[f"logits.{i}"] = out.logits[0].float().contiguous()
        tensors[f"greedy.{i}"] = full[0, T:].to(torch.int64).contiguous()
    hook.remove()
    save_file(tensors, os.path.join(case_dir, "golden.safetensors"))

    text_cfg = ref.config.get_text_config() if hasattr(ref.config, "get_text_config") else ref.config
    last_normed = not torch.allclose(tensors["hidden_states.0"][-1], tensors["block_output.0"])
    eos = ref.generation_config.eos_token_id
    info = dict(case=name, architecture=cfg_dict["architectures"][0], config_form=meta["form"],
                weight_storage=meta["storage"], notes=meta["notes"],
                num_hidden_layers=text_cfg.num_hidden_layers, hidden_size=text_cfg.hidden_size,
                vocab_size=text_cfg.vocab_size, num_sequences=len(SEQ_LENGTHS),
                sequence_lengths=SEQ_LENGTHS, max_new_tokens=MAX_NEW_TOKENS,
                eos_token_ids=eos if isinstance(eos, list) else ([eos] if eos is not None else []),
                last_hidden_state_is_final_normed=bool(last_normed),
                transformers_version=transformers.__version__, torch_version=torch.__version__,
                config_json_as_written_by_transformers=written)
    with open(os.path.join(case_dir, "golden.json"), "w") as f:
        json.dump(info, f, indent=2)
    size = sum(os.path.getsize(os.path.join(case_dir, f)) for f in os.listdir(case_dir))
    print(f"{name}: {size / 1e6:.2f} MB, files {sorted(os.listdir(case_dir))}, "
          f"last hidden normed={last_normed}, greedy0={tensors['greedy.0'].tolist()}")


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "models")
    os.makedirs(out_root, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    failed = []
    for name in CASES:
        try:
            build_case(name, out_root)
        except Exception as e:  # keep going: one broken case must not cost the others
            import traceback
            traceback.print_exc()
            failed.append(f"{name}: {type(e).__name__}: {e}")
    for f in failed:
        print("FAILED", f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
