#!/usr/bin/env bash
# On the GPU machine: install the wheels of scripts/gpu_wheels.sh into
# /tmp/site and run benchmarks/speed.py, writing its results and log into
# $OUT (benchmarks/results/ when OUT is unset). Arguments go to speed.py;
# without any, its GPU defaults run (see its docstring), stopping new cells
# after 8 minutes so that one device command (10 minutes at most) ends well.
#
# From the device tool, with .whl carried:
#   run(command="bash scripts/gpu_speed.sh", carry=[".whl"], timeout_s=600)
#   run(command="bash scripts/gpu_speed.sh --shapes llama --max-minutes 8", ...)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ "$#" -eq 0 ]; then set -- --max-minutes 8; fi
python3 benchmarks/speed.py --out-dir "$OUT" "$@" 2>&1 | tee "$OUT/speed-log.txt"
