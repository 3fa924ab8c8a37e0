#!/usr/bin/env bash
# Download, here, the wheels the GPU machine's image lacks for
# benchmarks/speed.py and scripts/gpu_quality.sh (see /work/.library/device/KINDS.md for what it has:
# JAX with CUDA, torch, transformers, tokenizers, matplotlib, Python 3.12),
# into .whl/, which the device tool carries: keras, keras-hub and the
# dependencies of theirs that the image does not hold. No TensorFlow: the
# benchmark feeds packed token ids, and keras_textdiff imports without it.
#
# Usage: scripts/gpu_wheels.sh        (then scripts/gpu_speed.sh on the GPU)
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude

WHEELS=(
  keras==3.15.1
  keras-hub==0.32.0
  namex==0.1.0       # keras
  optree==0.20.0     # keras
  kagglehub==1.0.2   # keras-hub
  kagglesdk==0.1.28  # keras-hub, kagglehub
  gguf==0.19.0       # scripts/gpu_quality.sh reads SmolLM2's GGUF file
)
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 \
  -d .whl "${WHEELS[@]}"
ls -l .whl
