#!/usr/bin/env bash
# The GPU measurements of BENCHMARKS.md's "hf: backend against plain transformers" as one
# short job, run from the repository root (about 7 minutes on an H200):
#
#   OUT=/tmp/hf_bench bash tests/bench/gpu_session.sh          # on the GPU machine
#   OUT=/tmp/hf_dry DRY=--dry bash tests/bench/gpu_session.sh  # rehearsal on a CPU
#
# Process 1: generate (product vs plain at batch 256 and 64), a torch.profiler table of
# one batch of each, log-likelihoods. Process 2: compile = true against plain
# generate(cache_implementation="static"). Each phase has a time limit, so a hang or a
# slow compile still leaves the other measurements in $OUT (bench.json, profile_*.txt).
# The package needs its core imports only (numpy, PyYAML, jinja2, xxhash, wcwidth) plus
# torch, transformers and tokenizers; it is imported from this checkout.
set -o pipefail
OUT=${OUT:-/tmp/hf_bench}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
MODEL_DIR=${MODEL_DIR:-/tmp/llmeval_gpu_bench_model${DRY:+_dry}}
{
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null
    "$PY" -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
    uptime
} 2>&1 | tee "$OUT/log"
# shellcheck disable=SC2086  # DRY is one optional flag
timeout 300 "$PY" tests/bench/bench_hf_gpu.py $DRY --dir "$MODEL_DIR" --out "$OUT/main" \
    --skip compile --profile 2>&1 | grep -v "Loading weights" | tee -a "$OUT/log"
# shellcheck disable=SC2086
timeout 190 "$PY" tests/bench/bench_hf_gpu.py $DRY --dir "$MODEL_DIR" --out "$OUT/compile" \
    --skip generate scoring 2>&1 | grep -v "Loading weights" | tee -a "$OUT/log"
