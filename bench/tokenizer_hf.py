#!/usr/bin/env python3
"""HF tokenizers' encode throughput on the text tokenizer_bench wrote, for BENCHMARKS.md.

    build/tokenizer_bench MODEL_DIR 100 1 /tmp/text.jsonl      # gpujob; writes the text
    python3 bench/tokenizer_hf.py MODEL_DIR /tmp/text.jsonl     # HF tokenizers, same documents

Prints MB/s per CPU second on one thread (Tokenizer.encode per document, as gpujob's bench does),
MB/s with encode_batch on every core, and the total token count, which must equal gpujob's.
"""
import json
import os
import sys
import time


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, text_path = sys.argv[1], sys.argv[2]
    from tokenizers import Tokenizer  # HF's Rust tokenizers

    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(text_path, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f]
    megabytes = sum(len(d.encode("utf-8")) for d in docs) / 1e6

    cpu0, wall0 = time.thread_time(), time.perf_counter()
    tokens = sum(len(tokenizer.encode(d, add_special_tokens=False).ids) for d in docs)
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    print(f"HF tokenizers {model_dir}: {megabytes:.1f} MB, {tokens} tokens, 1 thread: "
          f"{megabytes / cpu:.1f} MB/s per CPU second ({cpu:.2f} s CPU), {megabytes / wall:.1f} MB/s wall")

    wall0 = time.perf_counter()
    batch_tokens = sum(len(e.ids) for e in tokenizer.encode_batch(docs, add_special_tokens=False))
    wall = time.perf_counter() - wall0
    print(f"HF tokenizers encode_batch, {os.cpu_count()} cores: {megabytes / wall:.1f} MB/s ({wall:.2f} s), "
          f"{batch_tokens} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
