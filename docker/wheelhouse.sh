#!/usr/bin/env bash
# Fill wheelhouse/ (git-ignored) with every wheel the images install (services and Locust), fetched by pip on the
# host, so the offline image builds install with `pip install --no-index --find-links` and contact no registry.
#
# The images run CPython 3.11 on linux x86_64 (glibc), like the host; only wheels are accepted (no sdist, so no compiler
# is ever needed in a build). torch (pinned by a variant's requirements) must resolve to the CPU build: pip finds it
# through its configured find-links / index (PIP_FIND_LINKS on this kind of machine), or TORCH_INDEX_URL when set
# (for example the PyTorch CPU index).
# Cached: skipped when wheelhouse/.inputs matches the requirement files. FORCE=1 refreshes.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELHOUSE="${WHEELHOUSE:-wheelhouse}"
if [[ -x .venv/bin/python ]]; then DEFAULT_PIP=".venv/bin/python -m pip"; else DEFAULT_PIP="python3.11 -m pip"; fi
PIP="${PIP:-$DEFAULT_PIP}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-}"
EXTRA_INDEX_ARGS=()
[[ -n "$TORCH_INDEX_URL" ]] && EXTRA_INDEX_ARGS=(--extra-index-url "$TORCH_INDEX_URL")
# Every requirements file of a variant with an image (bench/variants.toml, read through the registry CLI with the
# project's .venv: `make setup`), plus Locust's.
REGISTRY_PYTHON="${REGISTRY_PYTHON:-.venv/bin/python}"
mapfile -t VARIANT_REQUIREMENTS < <("$REGISTRY_PYTHON" -m bench.registry requirements --image)
if [[ ${#VARIANT_REQUIREMENTS[@]} -eq 0 ]]; then
  echo "[wheelhouse] $REGISTRY_PYTHON -m bench.registry listed no requirements (run \`make setup\`)" >&2
  exit 1
fi
REQUIREMENTS=(requirements/serving-common.txt "${VARIANT_REQUIREMENTS[@]}" requirements/locust.txt)
PLATFORM_ARGS=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64)

log() { echo "[wheelhouse] $*" >&2; }

inputs="$(cat "$0" "${REQUIREMENTS[@]}" | sha256sum | cut -c1-16)"
if [[ "${FORCE:-0}" != 1 && -f "$WHEELHOUSE/.inputs" && "$(cat "$WHEELHOUSE/.inputs")" == "$inputs" ]]; then
  log "$WHEELHOUSE/ is current ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels); skipping"
  exit 0
fi

mkdir -p "$WHEELHOUSE"
started=$SECONDS
for requirements in "${VARIANT_REQUIREMENTS[@]}" requirements/locust.txt; do
  log "pip download -r $requirements"
  # shellcheck disable=SC2086
  $PIP download --quiet --dest "$WHEELHOUSE" "${PLATFORM_ARGS[@]}" "${EXTRA_INDEX_ARGS[@]}" -r "$requirements" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
done

torch_pin="$(sed -n 's/^torch==\([^ ]*\).*/\1/p' "${REQUIREMENTS[@]}" | head -n 1)"
torch_wheels=("$WHEELHOUSE"/torch-"$torch_pin"*.whl)
if [[ -n "$torch_pin" && ! -f "${torch_wheels[0]}" ]]; then
  log "no torch $torch_pin wheel landed in $WHEELHOUSE/"
  exit 1
fi
# nvidia-ml-py (NVML's Python bindings, pure Python, no CUDA; BentoML requires it) is not a CUDA package.
if ls "$WHEELHOUSE" | grep -iE '^nvidia_|^triton-' | grep -qviE '^nvidia_ml_py-'; then
  log "CUDA packages landed in $WHEELHOUSE/: torch must be the CPU build (check TORCH_INDEX_URL / find-links)"
  exit 1
fi
echo "$inputs" >"$WHEELHOUSE/.inputs"
log "$(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1) in $((SECONDS - started))s"
