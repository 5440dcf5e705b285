#!/usr/bin/env bash
# The GPU check on a lent device machine (docs/gpu_check.md): installs the carried wheels, stands in for PyAV (video
# only; ComfyUI imports it at start, the check uses no video), runs `python -m benchmarks.gpu_check` on ComfyUI in
# .gpu/comfyui, and leaves gpu_check.json (rewritten after every entry), gpu_check.log and gpu.txt in $OUT. Arguments
# go to gpu_check (e.g. --families sd15, --skip vlm).
#
# What travels: the device call sends the checkout its session started in (a helper's worktree does not travel), so
# run it from that checkout with this code in it (merged), after preparing, once, in its root (.gpu/ is ignored):
#   mkdir -p .gpu/whl .gpu/comfyui
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .gpu/whl torchsde==0.2.6 trampoline==0.1.2 open_clip_torch==3.3.0 \
#       ftfy==6.3.1 wcwidth==0.9.4
#   (cd ../shared/comfyui && tar cf - --exclude=./.git --exclude=./models --exclude=./output --exclude=./input \
#       --exclude=./temp --exclude=./user --exclude=__pycache__ .) | (cd .gpu/comfyui && tar xf -)
#   du -sh .gpu    # about 17 MB (ComfyUI 0.3.64 + 2.4 MB of wheels); with the tracked tree about 50 of the 64 MiB
# Then one device call: run(command="bash benchmarks/gpu_check_device.sh", carry=[".gpu"], timeout_s=590).
# Rehearsal on a CPU (no device time; HIDE_MISSING=1 hides from Python the packages the device image lacks):
#   PYTHON=/path/to/venv/python FORCE_AV_STUB=1 HIDE_MISSING=1 SITE=/tmp/gpu-site OUT=/tmp/gpu-out \
#   bash benchmarks/gpu_check_device.sh --smoke --threads 1
set -o pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_check_out}
SITE=${SITE:-/tmp/site}   # where the carried wheels are installed (--target), first on PYTHONPATH
mkdir -p "$OUT" "$SITE"
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl || exit 1
if [ -n "$FORCE_AV_STUB" ] || ! $PY -c "import av" 2>/dev/null; then
  # PyAV's wheel (35 MB) does not fit the 64 MiB that travels; ComfyUI needs only these names to import
  mkdir -p "$SITE/av/subtitles"
  printf 'class InputContainer: pass\nclass OutputContainer: pass\n' > "$SITE/av/container.py"
  printf 'class SubtitleStream: pass\n' > "$SITE/av/subtitles/stream.py"
  : > "$SITE/av/subtitles/__init__.py"
  printf 'from . import container, subtitles\n__version__ = "0-stub"\ndef open(*a, **k):\n    raise RuntimeError("PyAV is a stub here: no video")\n' > "$SITE/av/__init__.py"
fi
rm -f "$SITE/sitecustomize.py"
if [ -n "$HIDE_MISSING" ]; then
  # what ComfyUI 0.3.64 lists that the device image has not and that is not carried: the path finder finds none
  cat > "$SITE/sitecustomize.py" <<'EOF'
from importlib.machinery import PathFinder
HIDDEN = {"comfyui_frontend_package", "comfyui_workflow_templates", "comfyui_embedded_docs", "alembic", "sqlalchemy",
          "kornia", "spandrel", "pydantic", "pydantic_settings", "pydantic_core"}
_find_spec = PathFinder.find_spec.__func__
PathFinder.find_spec = classmethod(lambda cls, name, path=None, target=None: None if name.split(".")[0] in HIDDEN
                                   else _find_spec(cls, name, path, target))
EOF
fi
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
$PY -m benchmarks.gpu_check --comfyui .gpu/comfyui --out "$OUT/gpu_check.json" --threads 8 "$@" 2>&1 \
  | grep -v -E 'it/s\]|Loading weights|Writing model|Unable to parse pyproject.toml' | tee "$OUT/gpu_check.log"
