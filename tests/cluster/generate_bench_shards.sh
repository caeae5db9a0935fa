#!/usr/bin/env bash
# generate_bench under mpirun (the tensor-parallel generation benchmark of BENCHMARKS.md): two
# shards of the CPU demo model generate the completions of one process (the same token digest) and
# report the weights each shard reads per decode step; one process also times its decode step alone
# (--step-only), which a sharded run leaves out.
#   generate_bench_shards.sh GPUJOB GENERATE_BENCH BUILD_DIR MPIEXEC
set -euo pipefail
gpujob=$1 bench=$2 build=$3 mpiexec=$4
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*"; exit 1; }

# The benchmark is not part of the default build.
cmake --build "$build" --target generate_bench > "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; exit 1; }
"$gpujob" make-demo-model "$work/model" --corpus "$src/configs/data/mc_demo.jsonl" > /dev/null
run() {
  "$mpiexec" -np "$1" --oversubscribe "$bench" "$work/model" --device cpu --dtype float32 --batch 3 --prompts 5 \
    --prompt-len 12 --new 10 --warmup-prompts 1 --step-only 3 2>&1
}
one=$(run 1) || fail "one rank: $one"
two=$(run 2) || fail "two ranks: $two"
echo "$two"
digest_one=$(grep -o "completions digest: [0-9a-f]*" <<< "$one") || fail "no digest from one rank: $one"
digest_two=$(grep -o "completions digest: [0-9a-f]*" <<< "$two") || fail "no digest from two ranks: $two"
[[ $digest_one == "$digest_two" ]] || fail "2 shards generated other tokens than 1 ($digest_two vs $digest_one)"
grep -q "tensor parallel: 2 shards" <<< "$two" || fail "no shard report from 2 ranks"
[[ $(grep -c "gpujob generate" <<< "$two") == 1 ]] || fail "expected one report (rank 0's) from 2 ranks"
grep -Eq "decode step of 3 slots: [0-9.]+ ms queued back to back, [0-9.]+ ms reading its tokens before the next \(3 steps each\)" \
  <<< "$one" || fail "no --step-only report from one rank: $one"
! grep -q "decode step of" <<< "$two" || fail "a --step-only report from 2 shards: $two"
echo "OK: 2 shards match 1 ($digest_two)"
