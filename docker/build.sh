#!/usr/bin/env bash
# Build every image: for each Python serving variant of the registry (bench/variants.toml, those with a
# `[variant.image]` section) a slim (runtime) and a dev (fat) image from the one parametrized
# docker/python-variant.Dockerfile (only the flavours its `[variant.image] flavours` lists; ALL_FLAVOURS=1 builds
# both for every variant), plus the Locust load image.
#
#   docker/build.sh [VARIANT...] [locust]        default: every variant with an image (registry order), then locust
#   OFFLINE=1 docker/build.sh                    no registry: local Debian base images + wheelhouse/ only
#   BUILD_JOBS=1 docker/build.sh                 one build at a time (default: one per CPU)
#   (with no VARIANT named, every external/*/build-image.sh runs too when cargo is on PATH: the Rust service)
#
# Online (default): BASE_IMAGE=python:3.11-slim, DEV_BASE_IMAGE=python:3.11, PIP_INDEX_URL (PyPI) and TORCH_INDEX_URL
# (the PyTorch CPU index). OFFLINE=1 first makes the base images (docker/base-image.sh) and the wheelhouse
# (docker/wheelhouse.sh), both cached, then builds with --build-arg OFFLINE=1.
# An image whose tag exists with the same inputs label is reused without a build; FORCE=1 builds anyway.
# Tags: ${IMAGE_PREFIX:-serving-lab}/<variant>-serving:{slim,dev} and .../locust:latest (names compose.yaml uses).
# The variant list, packages, ports and files come from `python -m bench.registry` (REGISTRY_PYTHON, default the
# project's .venv: `make setup` makes it).
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

REGISTRY_PYTHON="${REGISTRY_PYTHON:-.venv/bin/python}"
if ! "$REGISTRY_PYTHON" -c 'import pydantic' 2>/dev/null; then
  log "$REGISTRY_PYTHON cannot read the registry (run \`make setup\`, or set REGISTRY_PYTHON)"
  exit 1
fi
registry() { "$REGISTRY_PYTHON" -m bench.registry "$@"; }
PYTHON_DOCKERFILE=docker/python-variant.Dockerfile

# Files each image is made from; their hash labels the image so an unchanged one is not rebuilt.
COMMON_INPUTS=(requirements/serving-common.txt docker/install-venv.sh docker/healthcheck.py docker/serve.py
  wheelhouse/.inputs bench/registry.py bench/variants.toml)
inputs_of() {
  case "$1" in
  locust) echo requirements docker/install-venv.sh docker/locust.Dockerfile bench images wheelhouse/.inputs ;;
  *)
    local package
    package="$(registry get "$1" package)"
    # shellcheck disable=SC2046 # one path a line, none with spaces
    echo "${COMMON_INPUTS[@]}" "$package" $(registry get "$1" image-files)
    ;;
  esac
}

dockerfile_of() {
  case "$1" in
  locust) echo docker/locust.Dockerfile ;;
  *) echo "$PYTHON_DOCKERFILE" ;;
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
  local variant_args=()
  if [[ "$variant" != locust ]]; then
    variant_args=(--build-arg "VARIANT=$variant" --build-arg "PACKAGE=$(registry get "$variant" package)"
      --build-arg "PORT=$(registry get "$variant" port)")
  fi
  docker build --file "$(dockerfile_of "$variant")" --target "$target" --tag "$tag" \
    --label "org.serving-lab.inputs=$inputs" "${variant_args[@]}" \
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

# Builds run BUILD_JOBS at a time (default: one per CPU): a build is mostly one single-threaded pip install and one
# layer commit, so two of them on two cores take little more than one.
BUILD_JOBS="${BUILD_JOBS:-$(nproc)}"
builds=() # "variant target tag", in registry order
queue_build() { builds+=("$1 $2 $3"); }

run_builds() {
  local running=0 failed=0 entry
  for entry in "${builds[@]}"; do
    if ((running >= BUILD_JOBS)); then
      wait -n || failed=1
      running=$((running - 1))
    fi
    # shellcheck disable=SC2086 # the entry is three words
    build_image $entry &
    running=$((running + 1))
  done
  while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
  done
  return "$failed"
}

mapfile -t image_variants < <(registry names --image)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${image_variants[@]}" locust)
for variant in "${targets[@]}"; do
  if [[ "$variant" == locust ]]; then
    queue_build locust runtime "$IMAGE_PREFIX/locust:latest"
  elif [[ " ${image_variants[*]} " == *" $variant "* ]]; then
    for file in $(registry get "$variant" image-files); do
      if [[ ! -e "$file" ]]; then
        log "$file (an image file of $variant) is missing: run \`make artifacts\` first"
        exit 1
      fi
    done
    flavours="$(registry get "$variant" image-flavours)"
    [[ "${ALL_FLAVOURS:-0}" != 1 ]] || flavours="slim dev"
    for flavour in $flavours; do
      case "$flavour" in
      slim) queue_build "$variant" runtime "$IMAGE_PREFIX/$variant-serving:slim" ;;
      dev) queue_build "$variant" dev "$IMAGE_PREFIX/$variant-serving:dev" ;;
      esac
    done
  else
    log "unknown image '$variant' (${image_variants[*]}, locust)"
    exit 2
  fi
done
started_all=$SECONDS
run_builds || {
  log "at least one image failed to build (see above)"
  exit 1
}
log "${#builds[@]} image(s) ready in $((SECONDS - started_all))s, $BUILD_JOBS at a time"

# External services with an offline image script of their own (external/<name>/build-image.sh), when no target was
# named: built from the host's toolchain, so they are skipped, with the reason, where it is missing.
if [[ $# -eq 0 ]]; then
  for script in external/*/build-image.sh; do
    [[ -x "$script" ]] || continue
    if command -v cargo >/dev/null 2>&1; then
      "$script"
    else
      log "skipping $script: cargo is not on PATH"
    fi
  done
fi
