#!/usr/bin/env bash
# The GPU benchmarks of BENCHMARKS.md, gpujob and HF transformers side by side in one run.
#
#   bench/run_gpu_benchmarks.sh BUILD_DIR WORK_DIR [extract|extract-job|generate|tp2|all] [SHAPE...]
#
# BUILD_DIR: a CUDA build of gpujob (its forward_bench and generate_bench targets are built here).
# WORK_DIR: where the random-weight checkpoints go (qwen3-8b about 16 GB, gemma3-12b about 24 GB,
# qwen3-32b about 66 GB); an existing checkpoint is reused. SHAPE default: qwen3-8b gemma3-12b for
# extract, qwen3-8b for generate, qwen3-32b for tp2 (two GPUs: test_nccl_collectives, then
# generate_bench under mpirun -np 2 with and without CUDA graphs; not part of all). Every line it
# prints is also appended to WORK_DIR/bench.log.
set -euo pipefail

(($# >= 2)) || { sed -n '2,12p' "$0" >&2; exit 2; }
BUILD=$1 WORK=$2 WHAT=${3:-all}
shift $(($# >= 3 ? 3 : 2))
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$WORK"
LOG=$WORK/bench.log

run() { echo "\$ $*" | tee -a "$LOG"; "$@" 2>&1 | tee -a "$LOG"; }

cmake --build "$BUILD" --target forward_bench generate_bench hdf5_write_bench >/dev/null

model_for() {
  local dir=$WORK/$1
  [[ -f $dir/config.json ]] || run python3 "$HERE/hf_baselines.py" make-model --shape "$1" --out "$dir"
  echo "$dir"
}

if [[ $WHAT == extract || $WHAT == all ]]; then
  shapes=("$@")
  ((${#shapes[@]})) || shapes=(qwen3-8b gemma3-12b)
  for shape in "${shapes[@]}"; do
    dir=$(model_for "$shape" | tail -n 1)
    for position in last all; do
      for batch in 1 16; do
        run python3 "$HERE/hf_baselines.py" extract --model "$dir" --layer 13 --batch "$batch" --position "$position"
        run "$BUILD/forward_bench" "$dir" --layer 13 --batch "$batch" --position "$position" --fused 0
        run "$BUILD/forward_bench" "$dir" --layer 13 --batch "$batch" --position "$position" --fused 1
      done
    done
  done
fi

if [[ $WHAT == extract-job || $WHAT == all ]]; then
  shapes=("$@")
  ((${#shapes[@]})) || shapes=(qwen3-8b)
  for shape in "${shapes[@]}"; do
    dir=$(model_for "$shape" | tail -n 1)
    # The first CUDA process on a machine waits about 2 s while the driver compiles the attention
    # kernels that cuDNN generates at run time; later processes, HF's included, find them in the
    # driver's cache (~/.nv/ComputeCache). One short untimed job warms that cache for both sides.
    run "$HERE/extract_job_bench.sh" "$BUILD/gpujob" "$dir" "$WORK/job-warmup" 32 512 16 13 last
    for position in last all; do
      run "$HERE/extract_job_bench.sh" "$BUILD/gpujob" "$dir" "$WORK/job-$position" 512 512 16 13 "$position"
      run python3 "$HERE/hf_baselines.py" extract-job --model "$dir" --data "$WORK/job-$position/rows.jsonl" \
        --out "$WORK/job-$position/hf.h5" --layer 13 --batch 16 --position "$position"
    done
  done
fi

if [[ $WHAT == generate || $WHAT == all ]]; then
  shapes=("$@")
  ((${#shapes[@]})) || shapes=(qwen3-8b)
  for shape in "${shapes[@]}"; do
    dir=$(model_for "$shape" | tail -n 1)
    for batch in 1 32; do
      run python3 "$HERE/hf_baselines.py" generate --model "$dir" --batch "$batch"
      run "$BUILD/generate_bench" "$dir" --batch "$batch" --prompts "$batch" --graphs 0 --fused 0
      run "$BUILD/generate_bench" "$dir" --batch "$batch" --prompts "$batch" --graphs 1 --fused 0
      run "$BUILD/generate_bench" "$dir" --batch "$batch" --prompts "$batch" --graphs 1 --fused 1
    done
  done
fi

# Tensor-parallel decode on 2 GPUs: the copy rate (hf_baselines.py limits) over the weight bytes
# each shard reads per step (generate_bench prints them) is the bandwidth limit.
if [[ $WHAT == tp2 ]]; then
  # First the NCCL checks on the two GPUs: sums, gathers, an all-reduce in a CUDA graph, and
  # sharded generation from graphs against per-call steps and one unsharded decoder.
  cmake --build "$BUILD" --target test_nccl_collectives >/dev/null
  run mpirun -np 2 "$BUILD/tests/test_nccl_collectives"
  shapes=("$@")
  ((${#shapes[@]})) || shapes=(qwen3-32b)
  for shape in "${shapes[@]}"; do
    dir=$(model_for "$shape" | tail -n 1)
    run python3 "$HERE/hf_baselines.py" limits
    for batch in 1 32; do
      # Decode steps replayed from CUDA graphs with the all-reduces inside (the default), then eagerly.
      run mpirun -np 2 "$BUILD/generate_bench" "$dir" --batch "$batch" --prompts "$batch"
      run mpirun -np 2 "$BUILD/generate_bench" "$dir" --batch "$batch" --prompts "$batch" --graphs 0
    done
  done
fi
