#!/usr/bin/env bash
# The Docker part of CI (.ci/run calls it), so the Docker tests run against a real engine and never skip.
#
#   docker/ci.sh prepare   engine answers (installed and started if needed), offline base images, the ONNX
#                          artifacts (and the .venv), the wheelhouse (cached), then every image built in the
#                          offline mode (reused when its inputs are unchanged)
#   docker/ci.sh stop      take down what the tests may have left, and stop the dockerd that prepare started
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[docker-ci] $*" >&2; }

prepare() {
  local started=$SECONDS
  docker/engine.sh start
  docker/base-image.sh
  make --no-print-directory artifacts # also the .venv, which reads the registry for the next two steps
  docker/wheelhouse.sh
  OFFLINE=1 docker/build.sh
  log "prepared in $((SECONDS - started))s:"
  docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' 'serving-lab/*' >&2
}

stop() {
  if docker/engine.sh status; then
    for project in $(docker ps -a --filter 'label=com.docker.compose.project' \
      --format '{{.Label "com.docker.compose.project"}}' | sort -u | grep '^serving-lab-test' || true); do
      log "removing leftover compose project $project"
      docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null
    done
  fi
  docker/engine.sh stop
}

case "${1:-}" in
prepare) prepare ;;
stop) stop ;;
*)
  echo "usage: $0 prepare|stop" >&2
  exit 2
  ;;
esac
