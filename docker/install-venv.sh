#!/bin/sh
# Build stage helper shared by every image: create /opt/venv from ONE requirements file.
#
#   install-venv.sh <requirements file> <wheelhouse dir>
#
# OFFLINE=1: install only from the wheelhouse (--no-index), no registry is contacted.
# Otherwise: PIP_INDEX_URL (default PyPI) plus TORCH_INDEX_URL (default the PyTorch CPU index) so torch resolves to the
# CPU build; wheels already in the wheelhouse are preferred sources too.
# Refuses a venv that holds CUDA packages: torch must be the CPU build.
set -eu
requirements="$1"
wheelhouse="$2"

python3 -m venv /opt/venv
if [ "${OFFLINE:-0}" = 1 ]; then
  set -- --no-index --find-links "$wheelhouse"
else
  set -- --index-url "${PIP_INDEX_URL:-https://pypi.org/simple}" \
    --extra-index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" --find-links "$wheelhouse"
fi
/opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: "$@" \
  -r "$requirements"
# nvidia-ml-py (NVML's Python bindings, pure Python, no CUDA; BentoML requires it) is not a CUDA package.
if /opt/venv/bin/python -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(nvidia-|triton )' |
  grep -qviE '^nvidia-ml-py '; then
  echo "CUDA packages were installed: torch must be the CPU build (set TORCH_INDEX_URL)" >&2
  exit 1
fi
