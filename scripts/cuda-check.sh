#!/usr/bin/env bash
# Builds gpujob against a CUDA libtorch and checks it on this machine's GPU:
#   1. the test suite (ctest; the Slurm test is left out),
#   2. every golden checkpoint's hidden states in bfloat16 on the GPU against HF float32
#      (GPUJOB_TEST_DEVICE=cuda test_model_goldens), fused attention against the fallback, and
#      test_attention on the GPU,
#   3. the extract job end to end on the GPU against HF transformers, bfloat16 and float32
#      (tests/golden/check_device_extract.py; needs python3 with torch, transformers, h5py),
#   4. the demo's pipeline on one GPU (generate, release, extract, sweep in one rank), then again
#      with the fused kernels and CUDA-graph decoding off.
#
#   scripts/cuda-check.sh [BUILD_DIR=build-cuda] [extra CMake arguments...]
#
# libtorch comes from CMAKE_PREFIX_PATH (a CUDA libtorch, or python3 -c 'import torch;
# print(torch.utils.cmake_prefix_path)'); the parallel HDF5 location may be given with
# -DHDF5_PARALLEL_INCLUDE_DIR=... -DHDF5_PARALLEL_LIBRARY=... Logs go to BUILD_DIR/cuda-check/.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${1:-$root/build-cuda}")
shift $(($# > 0 ? 1 : 0))
logs=$build/cuda-check
mkdir -p "$logs"
status=0
step() { echo "== $*"; }
fail() { echo "FAILED: $*"; status=1; }

step "configure and build ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" > "$logs/cmake.log" 2>&1 ||
  { tail -n 30 "$logs/cmake.log"; exit 1; }
grep -E "^-- gpujob" "$logs/cmake.log"
grep -q "CUDA build" "$logs/cmake.log" || echo "warning: this libtorch has no CUDA; the GPU steps will fail"
cmake --build "$build" -j "$(nproc)" > "$logs/build.log" 2>&1 || { grep -E "error" "$logs/build.log" | head; exit 1; }

step "test suite"
(cd "$build" && ctest -j "$(nproc)" -E slurm_local_cluster --output-on-failure > "$logs/ctest.log" 2>&1) ||
  fail "ctest (see $logs/ctest.log)"
grep -E "tests passed|\*\*\*" "$logs/ctest.log"

step "golden checkpoints in bfloat16 on the GPU; fused attention"
(cd "$build" && GPUJOB_SOURCE_DIR=$root GPUJOB_TEST_DEVICE=cuda tests/test_model_goldens) > "$logs/goldens.log" 2>&1 ||
  fail "test_model_goldens on cuda (see $logs/goldens.log)"
tail -n 2 "$logs/goldens.log"
(cd "$build" && GPUJOB_SOURCE_DIR=$root GPUJOB_TEST_DEVICE=cuda GPUJOB_TEST_FUSED=1 tests/test_model_goldens) \
  > "$logs/goldens-fused.log" 2>&1 || fail "test_model_goldens on cuda with the fused kernels (see $logs/goldens-fused.log)"
grep -E "largest" "$logs/goldens-fused.log" | tail -n 2; tail -n 2 "$logs/goldens-fused.log"
(cd "$build" && GPUJOB_SOURCE_DIR=$root tests/test_decoder "fused*") > "$logs/fused.log" 2>&1 || fail "fused attention"
tail -n 2 "$logs/fused.log"
(cd "$build" && GPUJOB_TEST_DEVICE=cuda tests/test_attention) > "$logs/attention.log" 2>&1 ||
  fail "attention on cuda, plain causal over more keys than queries included (see $logs/attention.log)"
tail -n 2 "$logs/attention.log"

step "extract job on the GPU against HF transformers"
for dtype in bfloat16 float32; do
  python3 "$root/tests/golden/check_device_extract.py" "$build/gpujob" --device cuda --dtype "$dtype" \
    --work "$logs/extract-$dtype" > "$logs/extract-$dtype.log" 2>&1 || fail "extract job, $dtype"
  tail -n 1 "$logs/extract-$dtype.log"
done

step "the demo pipeline on one GPU (one rank: generate, release, extract, sweep)"
demo=$logs/demo
mkdir -p "$demo"
sed -e 's/^  device: cpu/  device: cuda/' -e '/^layout:/,$d' "$root/configs/demo.yaml" > "$demo/demo-gpu.yaml"
cat >> "$demo/demo-gpu.yaml" <<'YAML'
layout:
  roles:
    generator: {gpus: [0], memory_fraction: 0.4}
    extractor: {gpus: [0], memory_fraction: 0.4}
coordinator:
  chunk_size: 4
YAML
(cd "$demo" && ln -sfn "$root/configs" configs &&
  "$build/gpujob" make-demo-model results/demo/model --corpus configs/data/mc_demo.jsonl > make-model.log 2>&1 &&
  "$build/gpujob" demo-gpu.yaml > run.log 2>&1) || fail "demo pipeline on cuda (see $demo/run.log)"
grep -E "decode:" "$demo/run.log"; tail -n 3 "$demo/run.log" 2>/dev/null

step "the demo pipeline again with the fused kernels and CUDA-graph decoding off"
(cd "$demo" && "$build/gpujob" demo-gpu.yaml --set output_dir=results-eager --set model.fused_kernels=false \
  --set generation.cuda_graphs=false > run-eager.log 2>&1) || fail "demo pipeline without fused kernels and graphs (see $demo/run-eager.log)"
grep -E "decode:|probe layer" "$demo/run-eager.log" | head -n 3

((status == 0)) && echo "cuda-check: all passed" || echo "cuda-check: failures above"
exit "$status"
