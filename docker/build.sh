#!/usr/bin/env bash
# Build every image: for each serving variant a slim (runtime) and a dev (fat) image, plus the Locust load image.
#
#   docker/build.sh [onnx] [torch] [locust]      default: all of them, onnx first
#   OFFLINE=1 docker/build.sh                    no registry: local Debian base images + wheelhouse/ only
#
# Online (default): BASE_IMAGE=python:3.11-slim, DEV_BASE_IMAGE=python:3.11, PIP_INDEX_URL (PyPI) and TORCH_INDEX_URL
# (the PyTorch CPU index). OFFLINE=1 first makes the base images (docker/base-image.sh) and the wheelhouse
# (docker/wheelhouse.sh), both cached, then builds with --build-arg OFFLINE=1.
# An image whose tag exists with the same inputs label is reused without a build; FORCE=1 builds anyway.
# Tags: ${IMAGE_PREFIX:-serving-lab}/<variant>-serving:{slim,dev} and .../locust:latest (names compose.yaml uses).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_PREFIX="${IMAGE_PREFIX:-serving-lab}"
OFFLINE="${OFFLINE:-0}"
if [[ "$OFFLINE" == 1 ]]; then
  BASE_IMAGE="${BASE_IMAGE:-serving-lab/python-base:bookworm}"
  DEV_BASE_IMAGE="${DEV_BASE_IMAGE:-serving-lab/python-dev:bookworm}"
else
  BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
  DEV_BASE_IMAGE="${DEV_BASE_IMAGE:-python:3.11}"
fi
PIP_INDEX_URL="${PIP_INDEX_URL:-https://pypi.org/simple}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
# Debian's client and the engine build with the legacy builder; a client without buildx cannot use BuildKit.
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

log() { echo "[build] $*" >&2; }

# Files each image is made from; their hash labels the image so an unchanged one is not rebuilt.
COMMON_INPUTS=(requirements docker/install-venv.sh docker/healthcheck.py wheelhouse/.inputs serving_core model_zoo/card.py
  model_zoo/__init__.py)
inputs_of() {
  case "$1" in
  torch) echo "${COMMON_INPUTS[@]}" torch_serving model_zoo ;;
  onnx) echo "${COMMON_INPUTS[@]}" onnx_serving build/artifacts/fused.optimized.onnx build/artifacts/fused.portable.onnx \
    build/artifacts/model.card.json build/artifacts/manifest.json ;;
  locust) echo requirements docker/install-venv.sh docker/locust.Dockerfile bench images wheelhouse/.inputs ;;
  esac
}

dockerfile_of() {
  case "$1" in
  locust) echo docker/locust.Dockerfile ;;
  *) echo "$1_serving/Dockerfile" ;;
  esac
}

inputs_hash() { # $1 variant, $2 target
  local paths
  read -ra paths <<<"$(inputs_of "$1")"
  {
    echo "$2|$OFFLINE|$BASE_IMAGE|$DEV_BASE_IMAGE|$PIP_INDEX_URL|$TORCH_INDEX_URL"
    docker image inspect --format '{{.Id}}' "$BASE_IMAGE" "$DEV_BASE_IMAGE" 2>/dev/null || true
    find "$(dockerfile_of "$1")" "${paths[@]}" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null |
      LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -c1-16
}

build_image() { # $1 variant, $2 target, $3 tag
  local variant="$1" target="$2" tag="$3" inputs found
  inputs="$(inputs_hash "$variant" "$target")"
  found="$(docker image inspect --format '{{index .Config.Labels "org.serving-lab.inputs"}}' "$tag" 2>/dev/null || true)"
  if [[ "${FORCE:-0}" != 1 && "$found" == "$inputs" ]]; then
    log "$tag is current (inputs $inputs); reusing it"
    return 0
  fi
  log "building $tag (target $target, offline=$OFFLINE)"
  local started=$SECONDS
  docker build --file "$(dockerfile_of "$variant")" --target "$target" --tag "$tag" \
    --label "org.serving-lab.inputs=$inputs" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "DEV_BASE_IMAGE=$DEV_BASE_IMAGE" \
    --build-arg "OFFLINE=$OFFLINE" --build-arg "PIP_INDEX_URL=$PIP_INDEX_URL" \
    --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL" \
    . >"build/docker-build-${variant}-${target}.log" 2>&1 || {
    log "build of $tag failed; last lines of build/docker-build-${variant}-${target}.log:"
    tail -n 40 "build/docker-build-${variant}-${target}.log" >&2
    return 1
  }
  log "$tag built in $((SECONDS - started))s: $(docker image inspect --format '{{.Size}}' "$tag" | numfmt --to=si)B"
}

mkdir -p build wheelhouse
if [[ "$OFFLINE" == 1 ]]; then
  docker/base-image.sh
  docker/wheelhouse.sh
fi

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(onnx torch locust)
for variant in "${targets[@]}"; do
  case "$variant" in
  onnx | torch)
    if [[ "$variant" == onnx && ! -f build/artifacts/fused.optimized.onnx ]]; then
      log "build/artifacts/fused.optimized.onnx is missing: run \`make artifacts\` first"
      exit 1
    fi
    build_image "$variant" runtime "$IMAGE_PREFIX/$variant-serving:slim"
    build_image "$variant" dev "$IMAGE_PREFIX/$variant-serving:dev"
    ;;
  locust) build_image locust runtime "$IMAGE_PREFIX/locust:latest" ;;
  *)
    log "unknown image '$variant' (onnx, torch, locust)"
    exit 2
    ;;
  esac
done
