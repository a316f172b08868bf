#!/usr/bin/env bash
# Build the offline base images from Debian packages (debootstrap + `docker import`), so no image is pulled from a registry.
#
#   serving-lab/python-base:bookworm   minbase + Python 3.11 + venv: the slim images' base (stands in for python:3.11-slim)
#   serving-lab/python-dev:bookworm    the same plus shell and build tools: the dev ("fat") images' base (for python:3.11)
#
# Cached: an image is skipped when its tag exists with the same recipe label. FORCE=1 rebuilds.
# Runs as root (debootstrap). Debian's packages come from DEBIAN_MIRROR over the host's network.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_TAG="${OFFLINE_BASE_IMAGE:-serving-lab/python-base:$SUITE}"
DEV_TAG="${OFFLINE_DEV_BASE_IMAGE:-serving-lab/python-dev:$SUITE}"
WORK_DIR="${BASE_IMAGE_WORK_DIR:-build/base-image}"
CACHE_DIR="$WORK_DIR/debs"

BASE_PACKAGES="python3,python3-venv,ca-certificates"
DEV_PACKAGES="$BASE_PACKAGES,build-essential,python3-dev,procps,curl,less,strace,iproute2,lsof,git,vim-tiny,file"

log() { echo "[base-image] $*" >&2; }

recipe_of() { # the label that says which inputs made an image
  echo "$SUITE|$1|$(sha256sum "$0" | cut -c1-16)"
}

image_is_current() {
  local tag="$1" recipe="$2" found
  found="$(docker image inspect --format '{{index .Config.Labels "org.serving-lab.recipe"}}' "$tag" 2>/dev/null)" ||
    return 1
  [[ "$found" == "$recipe" ]]
}

make_image() {
  local tag="$1" packages="$2" slim="$3"
  local recipe
  recipe="$(recipe_of "$packages")"
  if [[ "${FORCE:-0}" != 1 ]] && image_is_current "$tag" "$recipe"; then
    log "$tag is current; skipping"
    return 0
  fi
  local rootfs="$WORK_DIR/rootfs-${tag//[:\/]/_}"
  rm -rf "$rootfs"
  mkdir -p "$rootfs" "$CACHE_DIR"
  log "debootstrap $SUITE ($packages) -> $rootfs"
  local started=$SECONDS
  debootstrap --variant=minbase --include="$packages" --cache-dir="$(realpath "$CACHE_DIR")" \
    "$SUITE" "$rootfs" "$MIRROR" >"$WORK_DIR/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK_DIR/debootstrap.log" >&2
    return 1
  }
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/* "$rootfs"/tmp/*
  if [[ "$slim" == 1 ]]; then
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  fi
  log "docker import -> $tag"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL org.serving-lab.recipe=\"$recipe\"" \
    --change 'CMD ["python3"]' \
    - "$tag" >/dev/null
  rm -rf "$rootfs"
  log "$tag built in $((SECONDS - started))s: $(docker image inspect --format '{{.Size}}' "$tag" | numfmt --to=si)B"
}

command -v debootstrap >/dev/null || {
  log "debootstrap is missing (docker/engine.sh installs it)"
  exit 1
}
make_image "$BASE_TAG" "$BASE_PACKAGES" 1
make_image "$DEV_TAG" "$DEV_PACKAGES" 0
