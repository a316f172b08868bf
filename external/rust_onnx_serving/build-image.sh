#!/usr/bin/env bash
# Build the Rust service's image without any registry: `cargo build --release --locked` on the host, then a
# FROM-scratch image (Dockerfile.offline) holding the binary, the onnxruntime wheel's libonnxruntime.so and
# exactly the shared libraries `ldd` lists for them.
#
#   external/rust_onnx_serving/build-image.sh            # -> $EXTERNAL_IMAGE (serving-lab/rust-onnx-serving:latest)
#
# ORT_DYLIB_PATH: the library file or its folder (default: the repository's .venv onnxruntime/capi).
# SKIP_CARGO=1 reuses target/release/rust-onnx-serving as it is. Prints the image's size at the end.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TAG="${EXTERNAL_IMAGE:-serving-lab/rust-onnx-serving:latest}"
ORT="${ORT_DYLIB_PATH:-$ROOT/.venv/lib/python3.11/site-packages/onnxruntime/capi}"
BINARY="$HERE/target/release/rust-onnx-serving"

log() { echo "[rust-onnx-serving image] $*" >&2; }

if [[ "${SKIP_CARGO:-0}" != 1 ]]; then
  log "cargo build --release --locked"
  cargo build --release --locked --manifest-path "$HERE/Cargo.toml"
fi
[[ -x "$BINARY" ]] || { log "no $BINARY (build it first)"; exit 1; }

if [[ -d "$ORT" ]]; then
  LIBRARY="$(find "$ORT" -maxdepth 1 -name 'libonnxruntime.so.*' | sort | tail -n 1)"
else
  LIBRARY="$ORT"
fi
[[ -f "$LIBRARY" ]] || { log "no libonnxruntime.so.* at $ORT (set ORT_DYLIB_PATH)"; exit 1; }

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/rust-onnx-image.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
ROOTFS="$STAGE/rootfs"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/usr/lib/onnxruntime" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/artifacts"
chmod 1777 "$ROOTFS/tmp"
cp "$BINARY" "$ROOTFS/usr/local/bin/rust-onnx-serving"
cp "$LIBRARY" "$ROOTFS/usr/lib/onnxruntime/$(basename "$LIBRARY")"

# The dynamic loader and every library the binary and libonnxruntime need, at the paths ldd resolves them to
# (symlinks followed, so /lib/x86_64-linux-gnu/libc.so.6 is a real file in the image).
ldd "$BINARY" "$LIBRARY" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u | while read -r lib; do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nserving:x:10001:10001:serving:/nonexistent:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nserving:x:10001:\n' >"$ROOTFS/etc/group"
cp "$HERE/Dockerfile.offline" "$STAGE/Dockerfile"

log "docker build (legacy builder, nothing pulled) -> $TAG"
DOCKER_BUILDKIT=0 docker build --quiet -t "$TAG" "$STAGE" >/dev/null
SIZE="$(docker image inspect --format '{{.Size}}' "$TAG")"
log "$TAG: $((SIZE / 1000 / 1000)) MB ($SIZE bytes); files: $(cd "$ROOTFS" && find . -type f | sort | tr '\n' ' ')"
