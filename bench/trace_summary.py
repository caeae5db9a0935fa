#!/usr/bin/env python3
"""Sums a device trace (forward_bench / generate_bench --trace) per CUDA kernel.

    python3 bench/trace_summary.py TRACE.json [--top 25] [--sequence N] [--gaps US]

Prints each kernel's total time, call count and time per call, largest first, the total kernel
time, and the span from the first kernel's start to the last one's end (the gaps between them are
span minus kernel time on one stream). --gaps US also sums the idle gaps between consecutive kernels
longer than US microseconds: in a decode trace, where a step's kernels follow each other closely,
the gaps between steps (the host reading the sampled tokens and queueing the next step). The
profiler lengthens those gaps itself (a traced batch-32 generation of the Qwen3-8B shape spans 0.96 s
where the untraced one takes 0.86 s), so they bound the host's share from above.
"""
import argparse
import collections
import json
import re


def short_name(name):
    # Template arguments and parameter lists make every instance of one kernel distinct.
    name = name.replace("(anonymous namespace)::", "")
    name = re.sub(r"<.*>", "<>", name)
    name = re.sub(r"\(.*\)", "", name)
    return name[:110]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sequence", type=int, default=0,
                        help="also list this many consecutive kernels from the middle of the trace, in order")
    parser.add_argument("--gaps", type=float, default=0,
                        help="also count and sum the gaps between consecutive kernels longer than this many us")
    args = parser.parse_args()
    with open(args.trace) as f:
        events = json.load(f)["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel" and "dur" in e]
    if not kernels:
        raise SystemExit(f"{args.trace}: no kernel events (was the trace taken with CUDA activity?)")
    total = collections.defaultdict(float)
    calls = collections.Counter()
    for e in kernels:
        key = short_name(e["name"])
        total[key] += e["dur"]
        calls[key] += 1
    busy = sum(total.values())
    span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
    print(f"{len(kernels)} kernels, {busy / 1e3:.2f} ms of kernel time in a span of {span / 1e3:.2f} ms")
    print(f"{'ms':>9} {'share':>6} {'calls':>7} {'us/call':>8}  kernel")
    for key, t in sorted(total.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{t / 1e3:9.2f} {100 * t / busy:5.1f}% {calls[key]:7d} {t / calls[key]:8.1f}  {key}")
    ordered = sorted(kernels, key=lambda e: e["ts"]) if args.sequence or args.gaps else []
    if args.sequence:
        middle = len(ordered) // 2
        print(f"kernels {middle} to {middle + args.sequence} in order (start offset us, duration us):")
        for e in ordered[middle : middle + args.sequence]:
            print(f"{e['ts'] - ordered[middle]['ts']:10.1f} {e['dur']:8.1f}  {short_name(e['name'])}")
    if args.gaps:
        gaps, end = [], ordered[0]["ts"] + ordered[0]["dur"]
        for e in ordered[1:]:
            if e["ts"] - end > args.gaps:
                gaps.append(e["ts"] - end)
            end = max(end, e["ts"] + e["dur"])
        gaps.sort()
        if gaps:
            print(f"{len(gaps)} gaps over {args.gaps:g} us: {sum(gaps) / 1e3:.2f} ms in all, median "
                  f"{gaps[len(gaps) // 2]:.1f} us, largest {gaps[-1]:.1f} us")
        else:
            print(f"no gap over {args.gaps:g} us")


if __name__ == "__main__":
    main()
