#!/usr/bin/env bash
# Extraction end to end through the extract job: token ids in (JSONL), one HDF5 file out, timed
# as a user runs it, for BENCHMARKS.md. Prints the wall time of the whole run (model load and file
# creation included) and the extraction queue's time less the model load, each as tokens per second.
#
#   bench/extract_job_bench.sh GPUJOB MODEL_DIR WORK_DIR [SAMPLES=512] [SEQ=512] [BATCH=16] [LAYER=13] [POSITION=last] [DEVICE=cuda]
#
# CHUNK (environment, default 64): samples per chunk handed out by the coordinator.
# The rows are fixed-seed random token ids (ids 100 and up), the same ones
# `bench/hf_baselines.py extract-job --data WORK_DIR/rows.jsonl` reads for HF's baseline.
set -euo pipefail
(($# >= 3)) || { sed -n '2,9p' "$0" >&2; exit 2; }
GPUJOB=$(realpath "$1") MODEL=$(realpath "$2") WORK=$3
SAMPLES=${4:-512} SEQ=${5:-512} BATCH=${6:-16} LAYER=${7:-13} POSITION=${8:-last} DEVICE=${9:-cuda}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")

python3 - "$MODEL/config.json" "$WORK/rows.jsonl" "$SAMPLES" "$SEQ" <<'PY'
import json, random, sys
config = json.load(open(sys.argv[1]))
vocab = config.get("vocab_size") or config["text_config"]["vocab_size"]
rng = random.Random(1234)
with open(sys.argv[2], "w") as out:
    for _ in range(int(sys.argv[3])):
        out.write(json.dumps({"input_ids": [rng.randrange(100, vocab) for _ in range(int(sys.argv[4]))]}) + "\n")
PY

cat > "$WORK/extract_bench.yaml" <<YAML
job: extract
run_name: extract_bench
output_dir: $WORK/results
model:
  path: $MODEL
  dtype: bfloat16
  device: $DEVICE
data:
  path: $WORK/rows.jsonl
extract:
  layers: [$LAYER]
  positions: [$POSITION]
  batch_size: $BATCH
  output: $WORK/results/extract_bench.h5
coordinator:
  chunk_size: ${CHUNK:-64}
YAML
rm -rf "$WORK/results"
start=$(date +%s.%N)
"$GPUJOB" "$WORK/extract_bench.yaml" > "$WORK/extract_bench.log" 2>&1 || { tail -n 20 "$WORK/extract_bench.log"; exit 1; }
end=$(date +%s.%N)
tokens=$((SAMPLES * SEQ))
queue=$(grep -oE "queue extract: [0-9]+/[0-9]+ chunks done in [0-9.]+s" "$WORK/extract_bench.log" | grep -oE "[0-9.]+s$" | tr -d s)
# The queue opens before the (one) extractor has loaded its model: the load is taken out.
load=$(grep -oE "loaded .* in [0-9.]+ s" "$WORK/extract_bench.log" | grep -oE "[0-9.]+ s$" | tr -d ' s')
python3 - "$tokens" "$start" "$end" "$queue" "$load" "$SAMPLES" "$SEQ" "$BATCH" "$LAYER" "$POSITION" <<'PY'
import sys
tokens, start, end, queue, load = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
samples, seq, batch, layer, position = sys.argv[6:11]
wall, loop = end - start, queue - load
print(f"gpujob extract job layer={layer} position={position} samples={samples} seq={seq} batch={batch}: "
      f"{tokens / loop:.0f} tok/s extracting ({loop:.1f} s after the {load:.1f} s model load), {tokens / wall:.0f} tok/s "
      f"for the whole run ({wall:.1f} s with model load and file)")
PY
