#!/usr/bin/env bash
# On the GPU machine: the AR vs AR2Diff protocol on SmolLM2-135M
# (benchmarks/ar2diff_gpu.py run), from what `ar2diff_gpu.py export` packed.
#
# A device command carries at most 64 MiB and SmolLM2's GGUF file alone is
# 94 MiB (three parts of at most 40 MiB), so the export comes in two
# commands, back to back (a machine stays warm only about 30 s between
# commands). Each command stashes what it carried in /tmp/ar2diff-gpu; the
# one that completes the set runs. With the default budget data.npz is
# 13 MiB and the wheels 5 MiB: the first command carries 58 MiB, the second 54.
#
# Here, first:
#   scripts/gpu_wheels.sh
#   python benchmarks/ar2diff_gpu.py export --data ../shared/data
# Then with the device tool:
#   run(command="bash scripts/gpu_quality.sh", timeout_s=120,
#       carry=[".whl", ".gpu_quality/gguf.part0", ".gpu_quality/data.npz"])
#   run(command="MAX_MINUTES=7 bash scripts/gpu_quality.sh", timeout_s=570,
#       carry=[".gpu_quality/gguf.part1", ".gpu_quality/gguf.part2", ".gpu_quality/meta.json"])
# And here, on the files the last command brought back:
#   python benchmarks/ar2diff_gpu.py score --out FILES_AT
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-.gpu_quality}"
STASH=/tmp/ar2diff-gpu
mkdir -p "$STASH" "$OUT"
if [ -d .whl ]; then cp .whl/*.whl "$STASH/"; fi
if [ -d .gpu_quality ]; then cp .gpu_quality/* "$STASH/"; fi
echo "stashed: $(cd "$STASH" && ls | tr '\n' ' ')"

# Everything here? meta.json names the parts.
missing=$(python3 - "$STASH" <<'PY'
import glob, json, os, sys
stash = sys.argv[1]
meta = os.path.join(stash, "meta.json")
if not os.path.exists(meta):
    print("meta.json data.npz gguf.part*")
    sys.exit()
parts = json.load(open(meta))["gguf"]["parts"]
need = ["data.npz"] + [f"gguf.part{i}" for i in range(parts)]
print(" ".join(n for n in need if not os.path.exists(os.path.join(stash, n))),
      "wheels" if not glob.glob(os.path.join(stash, "*.whl")) else "")
PY
)
if [ -n "${missing// /}" ]; then
  echo "waiting for: $missing (run the next command)"
  exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site "$STASH"/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
# Later builds of the same graph (the AR2Diff_N rows) reuse compilations.
export JAX_COMPILATION_CACHE_DIR="$STASH/jax-cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/ar2diff_gpu.py run --export-dir "$STASH" --out "$OUT" \
  --max-minutes "${MAX_MINUTES:-7.5}" 2>&1 | tee "$OUT/gpu-quality-log.txt"
