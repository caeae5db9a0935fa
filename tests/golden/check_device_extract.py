#!/usr/bin/env python3
"""Checks gpujob's extraction on a GPU against the float32 HF reference of every golden case.

For each tests/data/models/<case>: writes the golden prompts as an input_ids data file, runs
`gpujob CONFIG` (job extract, every layer, positions all; then two layers, positions last and
first, where the deepest block runs only at those rows) with the given dtype on CUDA, and compares
the hidden states with HF's float32 ones.

    python3 tests/golden/check_device_extract.py GPUJOB_BINARY [--dtype bfloat16] [--device cuda] [--work DIR]

The CPU suite runs it as the test extract_job_goldens (--device cpu --dtype float32).

Metric per layer: max |gpujob - hf| / max |hf| over the layer's tokens. bfloat16 keeps 8 bits of
mantissa (relative rounding 2^-9 per operation), so a few layers of accumulated rounding stay
well under the 5e-2 tolerance used here; float32 must match within 1e-4.
Needs numpy and h5py.
"""
import argparse
import json
import os
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError as missing:
    print(f"skipped: needs numpy and h5py ({missing})")
    sys.exit(77)


def load_file(path):
    """A safetensors file as numpy arrays (the format is an 8-byte header length, a JSON header
    and raw little-endian data), so the check needs no safetensors package."""
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16}
    with open(path, "rb") as f:
        blob = f.read()
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_len])
    base = 8 + header_len
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        out[name] = np.frombuffer(blob[base + begin:base + end], dtype=kinds[meta["dtype"]]).reshape(meta["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gpujob")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--work", default="/tmp/gpujob-device-check")
    args = ap.parse_args()
    tolerance = 1e-4 if args.dtype == "float32" else 5e-2
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "models")
    os.makedirs(args.work, exist_ok=True)
    worst_overall = 0.0
    failures = []
    for case in sorted(os.listdir(root)):
        case_dir = os.path.join(root, case)
        info = json.load(open(os.path.join(case_dir, "golden.json")))
        golden = load_file(os.path.join(case_dir, "golden.safetensors"))
        n = info["num_sequences"]
        layers = info["num_hidden_layers"]
        data = os.path.join(args.work, f"{case}.jsonl")
        with open(data, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": i, "input_ids": golden[f"input_ids.{i}"].tolist()}) + "\n")
        def extract(name, layer_list, positions):
            """Runs the extract job over the golden prompts; the HDF5 path, or None on failure."""
            out = os.path.join(args.work, f"{case}-{name}.h5")
            if os.path.exists(out):
                os.remove(out)
            config = os.path.join(args.work, f"{case}-{name}.yaml")
            with open(config, "w") as f:
                f.write(f"job: extract\nrun_name: {case}-{name}\noutput_dir: {args.work}\n"
                        f"model: {{path: {case_dir}, dtype: {args.dtype}, device: {args.device}}}\n"
                        f"data: {{path: {data}}}\n"
                        f"extract: {{layers: {layer_list}, positions: [{', '.join(positions)}], output: {out}}}\n")
            run = subprocess.run([args.gpujob, config], capture_output=True, text=True)
            if run.returncode != 0:
                failures.append(f"{case} ({name}): gpujob exited {run.returncode}: "
                                f"{(run.stdout + run.stderr).strip()[-600:]}")
                return None
            return out

        def error(ours, ref):
            return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))

        worst = 0.0
        # Every layer, every token.
        out = extract("all", list(range(layers)), ["all"])
        if out is None:
            continue
        with h5py.File(out, "r") as h5:
            offsets = h5["/samples/token_offset"][:]
            counts = h5["/samples/num_tokens"][:]
            for layer in range(layers):
                rows = h5[f"/activations/layer_{layer}/all"][:]
                for i in range(n):
                    ours = rows[offsets[i]:offsets[i] + counts[i]]
                    worst = max(worst, error(ours, golden[f"hidden_states.{i}"][layer + 1]))
        # One row per sequence only: the deepest block computes just those rows.
        picked = sorted({1, layers - 1})
        out = extract("rows", picked, ["last", "first"])
        if out is None:
            continue
        with h5py.File(out, "r") as h5:
            counts = h5["/samples/num_tokens"][:]
            for layer in picked:
                last, first = h5[f"/activations/layer_{layer}/last"][:], h5[f"/activations/layer_{layer}/first"][:]
                for i in range(n):
                    ref = golden[f"hidden_states.{i}"][layer + 1]
                    worst = max(worst, error(last[i], ref[counts[i] - 1]), error(first[i], ref[0]))
        worst_overall = max(worst_overall, worst)
        status = "ok" if worst <= tolerance else "FAIL"
        print(f"{case:24s} {args.dtype:9s} layers {layers}  max rel err {worst:.2e}  {status}")
        if worst > tolerance:
            failures.append(f"{case}: max relative error {worst:.3e} > {tolerance}")
    print(f"worst over all cases: {worst_overall:.2e} (tolerance {tolerance})")
    for f in failures:
        print("FAILED", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
