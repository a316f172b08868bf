#!/usr/bin/env bash
# Make sure a Docker engine answers, or stop the one this script started.
#
#   docker/engine.sh [start]   engine answers already -> nothing to do; else install Debian's docker.io (+ docker-compose,
#                              debootstrap) when dockerd is missing and start dockerd detached, as root.
#   docker/engine.sh stop      stop the dockerd this script started (never one it did not start)
#   docker/engine.sh status    exit 0 when an engine answers
#
# dockerd is started under setsid with stdin from /dev/null and its output in a log file: a background process that keeps
# the caller's stdout open would keep CI from finishing.
set -euo pipefail

STATE_DIR="${SERVING_LAB_ENGINE_DIR:-/tmp/serving-lab-engine}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
READY_TIMEOUT_S="${ENGINE_READY_TIMEOUT_S:-90}"

log() { echo "[engine] $*" >&2; }

engine_answers() {
  timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

install_engine() {
  log "installing Debian's docker.io, docker-compose and debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    docker.io docker-compose debootstrap containerd runc iptables ca-certificates >/dev/null
}

start_engine() {
  if engine_answers; then
    log "engine already answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})' 2>/dev/null)"
    # The offline base images need debootstrap even where an engine was already running.
    if ! command -v debootstrap >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
      log "installing Debian's debootstrap (docker/base-image.sh needs it)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "no engine answers and starting dockerd needs root"
    return 1
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1 ||
    ! command -v debootstrap >/dev/null 2>&1; then
    install_engine
  fi
  mkdir -p "$STATE_DIR"
  log "starting dockerd (log: $LOG_FILE)"
  setsid dockerd >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local waited=0
  until engine_answers; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      log "dockerd exited; last lines of its log:"
      tail -n 20 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      return 1
    fi
    if ((waited >= READY_TIMEOUT_S)); then
      log "dockerd did not answer within ${READY_TIMEOUT_S}s"
      tail -n 20 "$LOG_FILE" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "engine answers after ${waited}s: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
}

stop_engine() {
  if [[ ! -f "$PID_FILE" ]]; then
    log "no dockerd started by this script; nothing to stop"
    return 0
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd still running after 30s; sending KILL"
      kill -KILL "$pid" || true
    fi
  fi
  rm -f "$PID_FILE"
}

case "${1:-start}" in
start) start_engine ;;
stop) stop_engine ;;
status) engine_answers ;;
*)
  echo "usage: $0 [start|stop|status]" >&2
  exit 2
  ;;
esac
