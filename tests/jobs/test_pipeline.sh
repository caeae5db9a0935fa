#!/usr/bin/env bash
# The activation pipeline end to end on the CPU under mpirun (job cache_activations, then sweep):
#  - one rank, 2 generators + 2 extractors, and 2 phased ranks give the same completions and
#    the same activations (sampled generation: the streams depend on the prompt id only);
#  - a rerun with the cache generates nothing and reproduces the file;
#  - a run whose extractor is killed with SIGKILL midway, rerun, equals the uninterrupted run;
#  - the file opens with h5dump (and h5py when installed); the sweep writes its three outputs.
# Usage: test_pipeline.sh GPUJOB_BINARY
set -euo pipefail
gpujob=${1:?usage: test_pipeline.sh GPUJOB_BINARY}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/gpujob-pipeline.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Files are compared to 1e-5. One thread per rank keeps each float32 GEMM's sums in one order: a
# BLAS that picks its thread count by the machine's load splits them differently from run to run
# (seen on a 16-core host under a parallel ctest), and the ranks oversubscribe the cores anyway.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mpi=(mpirun --oversubscribe)
# The system Python has Debian's numpy and h5py (scripts/deps.sh installs them).
python3() { if [[ -x /usr/bin/python3 ]]; then /usr/bin/python3 "$@"; else command python3 "$@"; fi; }
fail() { echo "FAIL: $*" >&2; exit 1; }

"$gpujob" make-demo-model "$work/model" --corpus "$src/configs/data/mc_demo.jsonl" >/dev/null

# config NAME LAYOUT: a cache_activations config writing $work/NAME.h5 with its own cache.
config() {
  local name=$1 layout=$2
  cat >"$work/$name.yaml" <<EOF
job: cache_activations
run_name: $name
output_dir: $work/results
model: {path: $work/model, dtype: float32, device: cpu}
data: {path: $src/configs/data/mc_demo.jsonl, n: 16, shuffle: true, seed: 3, template: $src/configs/prompts/benign.yaml}
generation: {max_new_tokens: 12, temperature: 1.0, top_p: 0.9, seed: 7, batch_size: 3, cache_dir: $work/cache-${3:-$name}}
extract: {layers: [0, 3], positions: [last, mean, all], output: $work/$name.h5, batch_size: 4}
sweep: {folds: 2, label: data}
coordinator: {chunk_size: 2, progress_interval_s: 1}
$layout
EOF
}

same_file() {  # same_file A B: every activation dataset and the token bookkeeping agree
  local a=$1 b=$2
  for d in /samples/num_tokens /samples/token_offset /activations/layer_0/last /activations/layer_0/mean \
           /activations/layer_3/last /activations/layer_3/mean; do
    h5diff -d 1e-5 "$a" "$b" "$d" "$d" >/dev/null || fail "$d differs between $a and $b ($(h5diff -d 1e-5 "$a" "$b" "$d" "$d" | tail -1))"
  done
  # `all` rows beyond a sample's num_tokens are unused capacity: compare the used rows only.
  python3 - "$a" "$b" <<'EOF' || fail "all-token rows differ between $a and $b"
import sys
try:
    import h5py, numpy as np
except ImportError:
    sys.exit(0)
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for layer in (0, 3):
    for off_a, off_b, n in zip(a["/samples/token_offset"], b["/samples/token_offset"], a["/samples/num_tokens"]):
        x = a[f"/activations/layer_{layer}/all"][off_a:off_a + n]
        y = b[f"/activations/layer_{layer}/all"][off_b:off_b + n]
        assert np.allclose(x, y, atol=1e-5), (layer, off_a)
EOF
}

same_completions() {  # the two caches hold the same completions
  python3 - "$1" "$2" <<'EOF' || fail "completions differ between $1 and $2"
import glob, json, sys
def load(d):
    (path,) = glob.glob(d + "/*/*/*/completions.jsonl")
    return {r["id"]: r["completion_ids"] for r in map(json.loads, open(path))}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a == b and len(a) == 16, (len(a), len(b))
EOF
}

echo "== one rank"
config single ""
"${mpi[@]}" -np 1 "$gpujob" "$work/single.yaml" >"$work/single.log" 2>&1 || { cat "$work/single.log"; fail "single-rank run"; }

echo "== 2 generators + 2 extractors"
config split "layout: {roles: {generator: {gpus: [0, 1]}, extractor: {gpus: [2, 3]}}}"
"${mpi[@]}" -np 4 "$gpujob" "$work/split.yaml" >"$work/split.log" 2>&1 || { cat "$work/split.log"; fail "split run"; }
same_completions "$work/cache-single" "$work/cache-split"
same_file "$work/single.h5" "$work/split.h5"

echo "== 2 ranks, generation then extraction on the same slots"
config overlap "layout: {roles: {generator: {gpus: [0, 1]}, extractor: {gpus: [0, 1]}}}"
"${mpi[@]}" -np 2 "$gpujob" "$work/overlap.yaml" >"$work/overlap.log" 2>&1 || { cat "$work/overlap.log"; fail "overlap run"; }
same_completions "$work/cache-single" "$work/cache-overlap"
same_file "$work/single.h5" "$work/overlap.h5"

echo "== rerun with the cache: nothing is generated"
config cached "layout: {roles: {generator: {gpus: [0, 1]}, extractor: {gpus: [2, 3]}}}" split
lines_before=$(cat "$work"/cache-split/*/*/*/completions.jsonl | wc -l)
"${mpi[@]}" -np 4 "$gpujob" "$work/cached.yaml" >"$work/cached.log" 2>&1 || { cat "$work/cached.log"; fail "cached run"; }
grep -q "16 of 16 samples stored, 0 chunks to generate" "$work/cached.log" || { cat "$work/cached.log"; fail "the cached run planned generation"; }
grep -q "loaded .* on" <(grep "rank [01]\]" "$work/cached.log") && fail "a generator rank loaded its model although nothing was to generate"
lines_after=$(cat "$work"/cache-split/*/*/*/completions.jsonl | wc -l)
[[ $lines_before == "$lines_after" ]] || fail "the cache grew from $lines_before to $lines_after lines"
same_file "$work/split.h5" "$work/cached.h5"

echo "== SIGKILL of an extractor midway, then rerun"
config killed "layout: {roles: {generator: {gpus: [0, 1]}, extractor: {gpus: [2, 3]}}}" split
"${mpi[@]}" -np 4 "$gpujob" "$work/killed.yaml" >"$work/killed1.log" 2>&1 &
runner=$!
killed=no
for _ in $(seq 1 600); do
  if [[ -s $work/killed.h5.progress.jsonl ]]; then
    # The highest-numbered rank is an extractor: kill it without warning.
    pid=$(pgrep -f "gpujob $work/killed.yaml" | grep -v "^$runner$" | sort -n | tail -1 || true)
    if [[ -n $pid ]]; then kill -9 "$pid" && killed=yes; fi
    break
  fi
  kill -0 "$runner" 2>/dev/null || break
  sleep 0.02
done
wait "$runner" && first=0 || first=$?
done_before=$(wc -l <"$work/killed.h5.progress.jsonl" 2>/dev/null || echo 0)
echo "   first run: exit $first, killed=$killed, $done_before chunk(s) recorded"
if [[ $killed == yes ]]; then
  [[ $first != 0 ]] || fail "the job survived the SIGKILL of a rank with exit 0"
fi
"${mpi[@]}" -np 4 "$gpujob" "$work/killed.yaml" >"$work/killed2.log" 2>&1 || { cat "$work/killed2.log"; fail "rerun after SIGKILL"; }
same_file "$work/split.h5" "$work/killed.h5"

echo "== readers"
h5dump -H "$work/split.h5" >/dev/null || fail "h5dump cannot read the file"
python3 - "$work/split.h5" <<'EOF' || fail "h5py cannot read the file"
import sys
try:
    import h5py
except ImportError:
    print("   (h5py not installed: skipped)"); sys.exit(0)
with h5py.File(sys.argv[1], "r") as f:
    assert f["/activations/layer_3/last"].shape[0] == 16
    assert f.attrs["complete"] == 1
    assert len(f["/samples/completion"]) == 16
EOF

echo "== sweep on the cached activations"
sed -e 's/^job: cache_activations/job: sweep/' "$work/cached.yaml" >"$work/sweep.yaml"
"${mpi[@]}" -np 4 "$gpujob" "$work/sweep.yaml" >"$work/sweep.log" 2>&1 || { cat "$work/sweep.log"; fail "sweep run"; }
for f in sweep_summary.txt sweep_summary.csv sweep_auroc.svg; do
  [[ -s $work/results/cached/$f ]] || fail "sweep did not write $f"
done
grep -q "0 chunks to generate" "$work/sweep.log" || fail "the sweep regenerated completions"
echo "1 passed, 0 failed"
