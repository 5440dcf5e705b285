#!/usr/bin/env bash
# The GPU check on a lent device machine (docs/gpu_check.md): installs the carried wheels, stands in for PyAV (video
# only; ComfyUI imports it at start, the check uses no video), runs `python -m benchmarks.gpu_check` on ComfyUI in
# .gpu/comfyui, and leaves the JSON and the log in $OUT. Arguments go to gpu_check (e.g. --families sd15).
set -o pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT" /tmp/site
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
if [ -n "$FORCE_AV_STUB" ] || ! $PY -c "import av" 2>/dev/null; then
  # PyAV's wheel (35 MB) does not fit the 64 MiB that travels; ComfyUI needs only these names to import
  mkdir -p /tmp/site/av/subtitles
  printf 'class InputContainer: pass\nclass OutputContainer: pass\n' > /tmp/site/av/container.py
  printf 'class SubtitleStream: pass\n' > /tmp/site/av/subtitles/stream.py
  : > /tmp/site/av/subtitles/__init__.py
  printf 'from . import container, subtitles\n__version__ = "0-stub"\ndef open(*a, **k):\n    raise RuntimeError("PyAV is a stub here: no video")\n' > /tmp/site/av/__init__.py
fi
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
$PY -m benchmarks.gpu_check --comfyui .gpu/comfyui --out "$OUT/gpu_check.json" --threads 8 "$@" 2>&1 \
  | grep -v -E 'it/s\]|Loading weights|Writing model' | tee "$OUT/gpu_check.log"
