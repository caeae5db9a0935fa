#!/usr/bin/env python3
"""HF transformers baselines and hardware limits for BENCHMARKS.md (run on the GPU host).

    hf_baselines.py make-model --shape qwen3-8b|gemma3-12b|qwen3-32b --out DIR
    hf_baselines.py limits                                   # bf16 matmul TFLOP/s, copy GB/s
    hf_baselines.py extract  --model DIR [--layer 13] [--batch 16] [--seq 512] [--position last|all]
    hf_baselines.py generate --model DIR [--batch 1] [--prompt-len 256] [--new 128]
    hf_baselines.py extract-job --model DIR --data ROWS.jsonl --out FILE.h5 [--layer 13] [--batch 16] [--position last]

make-model writes a random-weight bf16 checkpoint of a real shape (config from the shape table,
weights from the model's own initialiser) that gpujob and HF both load. extract times HF as the
guides use it (output_hidden_states over the whole model) and HF truncated by hand after the layer
(the best a careful researcher does), sdpa attention, rows copied to the host; it also prints the
FLOP floor of the layers up to and including the requested one from the matmul rate measured in
the same process. generate times HF generate (greedy, EOS ignored through min_new_tokens) and prints
the batch-1 bandwidth limit (weight bytes per token over the measured copy rate). extract-job is
the end-to-end counterpart of bench/extract_job_bench.sh: the same token-id rows in, HF truncated
after the layer, the rows written with h5py into one float32 dataset, timed with the model load and
without.
"""
import argparse
import time

import torch

SHAPES = {
    # Qwen3-8B: hidden 4096, 36 layers, 32/8 heads, head_dim 128, intermediate 12288, vocab 151936.
    "qwen3-8b": dict(arch="qwen3", hidden_size=4096, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, intermediate_size=12288, vocab_size=151936),
    # Qwen3-32B: hidden 5120, 64 layers, 64/8 heads, head_dim 128, intermediate 25600.
    "qwen3-32b": dict(arch="qwen3", hidden_size=5120, num_hidden_layers=64, num_attention_heads=64,
                      num_key_value_heads=8, head_dim=128, intermediate_size=25600, vocab_size=151936),
    # Gemma-3-12B text: hidden 3840, 48 layers, 16/8 heads, head_dim 256, intermediate 15360,
    # vocab 262208, sliding window 1024.
    "gemma3-12b": dict(arch="gemma3", hidden_size=3840, num_hidden_layers=48, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=256, intermediate_size=15360, vocab_size=262208,
                       sliding_window=1024),
}


def make_model(shape: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, Qwen3Config
    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    config = Qwen3Config(**spec) if arch == "qwen3" else Gemma3TextConfig(**spec)
    config.dtype = torch.bfloat16
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.save_pretrained(out, max_shard_size="5GB")
    params = sum(p.numel() for p in model.parameters())
    print(f"made {shape}: {params / 1e9:.2f}B parameters in {out} ({time.perf_counter() - started:.0f} s)")


def timed(fn, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def limits() -> tuple:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    tflops = 2 * 8192 ** 3 / timed(lambda: a @ b, 20, 5) / 1e12
    src = torch.empty(2 << 30, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    gbps = 2 * src.numel() / timed(lambda: dst.copy_(src), 10, 3) / 1e9  # read + write
    print(f"limits: bf16 matmul {tflops:.0f} TFLOP/s, device copy {gbps:.0f} GB/s (read + write)")
    return tflops, gbps


def load(model_dir: str):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa",
                                                 device_map="cuda")
    model.eval()
    return model


def random_ids(config, batch: int, length: int) -> torch.Tensor:
    """Fixed-seed token ids in [100, vocab) on the GPU: above 100, clear of special tokens."""
    generator = torch.Generator(device="cuda").manual_seed(1234)
    return torch.randint(100, config.vocab_size, (batch, length), device="cuda", generator=generator)


def matmul_flops_per_token(config, layers: int, seq: int) -> float:
    """Matmul FLOPs per token of `layers` decoder blocks at sequence length seq (causal attention)."""
    h, hd = config.hidden_size, config.head_dim
    q, kv = config.num_attention_heads * hd, config.num_key_value_heads * hd
    projections = 2 * (h * (q + 2 * kv) + q * h + 3 * h * config.intermediate_size)
    attention = 2 * 2 * q * seq / 2  # QK^T and PV, half of the keys on average under the causal mask
    return layers * (projections + attention)


@torch.inference_mode()
def extract(args) -> None:
    tflops, _ = limits()
    model = load(args.model)
    config = model.config
    ids = random_ids(config, args.batch, args.seq)
    index = args.layer + 1  # HF hidden_states[L + 1] is the output of block L

    def pick(hidden):
        rows = hidden[:, -1, :] if args.position == "last" else hidden.reshape(-1, hidden.shape[-1])
        return rows.float().cpu()

    full = timed(lambda: pick(model(ids, output_hidden_states=True).hidden_states[index]), args.iters, 2)
    tokens = args.batch * args.seq
    print(f"HF output_hidden_states layer={args.layer} position={args.position} batch={args.batch} seq={args.seq}: "
          f"{tokens / full:.0f} tok/s")

    inner = model.model
    inner.layers = inner.layers[: args.layer + 1]
    inner.norm = torch.nn.Identity()
    truncated = timed(lambda: pick(inner(ids).last_hidden_state), args.iters, 2)
    print(f"HF truncated after layer {args.layer} position={args.position} batch={args.batch} seq={args.seq}: "
          f"{tokens / truncated:.0f} tok/s")
    floor = tflops * 1e12 / matmul_flops_per_token(config, args.layer + 1, args.seq)
    print(f"FLOP floor of blocks 0-{args.layer} at {tflops:.0f} TFLOP/s: {floor:.0f} tok/s")


@torch.inference_mode()
def generate(args) -> None:
    _, gbps = limits()
    model = load(args.model)
    config = model.config
    ids = random_ids(config, args.batch, args.prompt_len)
    run = lambda: model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,  # noqa: E731
                                 max_new_tokens=args.new, min_new_tokens=args.new, pad_token_id=0)
    seconds = timed(run, 1, 1)
    print(f"HF generate batch={args.batch} prompt_len={args.prompt_len} new={args.new}: "
          f"{args.batch * args.new / seconds:.1f} tok/s")
    # A decode step reads every weight once, except the input embedding table (one row per token;
    # when it is tied to the LM head, the head reads it whole). The limit is those bytes over the
    # measured copy rate (which counts each byte read and written), as the issue defines it.
    embed = model.get_input_embeddings().weight
    tied = embed.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    read_bytes = weight_bytes - (0 if tied else embed.numel() * embed.element_size())
    limit = (gbps * 1e9) / read_bytes
    print(f"batch-1 bandwidth limit: {limit:.1f} tok/s ({read_bytes / 1e9:.2f} GB of weights read per token at the "
          f"{gbps:.0f} GB/s copy rate)")


@torch.inference_mode()
def extract_job(args) -> None:
    import json
    import h5py
    started = time.perf_counter()
    model = load(args.model)
    inner = model.model
    inner.layers = inner.layers[: args.layer + 1]
    inner.norm = torch.nn.Identity()
    rows = [json.loads(line)["input_ids"] for line in open(args.data)]
    seq = len(rows[0])
    loop_started = time.perf_counter()
    with h5py.File(args.out, "w") as f:
        hidden = model.config.hidden_size
        shape = (len(rows), hidden) if args.position == "last" else (len(rows) * seq, hidden)
        out = f.create_dataset(f"layer_{args.layer}/{args.position}", shape=shape, dtype="float32")
        for begin in range(0, len(rows), args.batch):
            ids = torch.tensor(rows[begin:begin + args.batch], device="cuda")
            h = inner(ids).last_hidden_state
            picked = h[:, -1, :] if args.position == "last" else h.reshape(-1, hidden)
            values = picked.float().cpu().numpy()
            first = begin if args.position == "last" else begin * seq
            out[first:first + values.shape[0]] = values
    torch.cuda.synchronize()
    ended = time.perf_counter()
    tokens = len(rows) * seq
    print(f"HF truncated + h5py extract layer={args.layer} position={args.position} samples={len(rows)} seq={seq} "
          f"batch={args.batch}: {tokens / (ended - loop_started):.0f} tok/s extracting ({ended - loop_started:.1f} s), "
          f"{tokens / (ended - started):.0f} tok/s for the whole run ({ended - started:.1f} s with model load)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-model")
    p.add_argument("--shape", choices=sorted(SHAPES), required=True)
    p.add_argument("--out", required=True)
    sub.add_parser("limits")
    p = sub.add_parser("extract")
    p.add_argument("--model", required=True)
    p.add_argument("--layer", type=int, default=13)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--position", choices=["last", "all"], default="last")
    p.add_argument("--iters", type=int, default=10)
    p = sub.add_parser("generate")
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--new", type=int, default=128)
    p = sub.add_parser("extract-job")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--layer", type=int, default=13)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--position", choices=["last", "all"], default="last")
    args = parser.parse_args()
    if args.command == "make-model":
        make_model(args.shape, args.out)
    elif args.command == "limits":
        limits()
    elif args.command == "extract":
        extract(args)
    elif args.command == "extract-job":
        extract_job(args)
    else:
        generate(args)


if __name__ == "__main__":
    main()
