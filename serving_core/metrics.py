"""Prometheus metrics that stay correct with several uvicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serving_core.server`` sets it before the workers start), every worker
writes its samples to files in that directory and ``/metrics`` - whichever worker answers - aggregates all of
them. Without it (a single process started directly by uvicorn) the default in-process registry is used.
"""

from __future__ import annotations

import os
import resource

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from serving_core.settings import MULTIPROC_ENV

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

REQUESTS = Counter(
    "serving_requests", "HTTP requests by route, method and status", ["route", "method", "status"]
)
REQUEST_LATENCY = Histogram(
    "serving_request_duration_seconds",
    "Time from request start to response end",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
STAGE_LATENCY = Histogram(
    "serving_stage_duration_seconds",
    "Time per pipeline stage (decode, preprocess, inference, total)",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
BATCH_SIZE = Histogram(
    "serving_batch_size", "Images per inference call", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
IN_FLIGHT = Gauge("serving_in_flight_requests", "Requests being handled now", multiprocess_mode="livesum")
REJECTED = Counter("serving_rejected_requests", "Requests refused before any work", ["reason"])
RELOADS = Counter("serving_model_reloads", "Model reload attempts by outcome", ["outcome"])
WORKER_CPU = Gauge(
    "serving_worker_cpu_seconds",
    "User+system CPU seconds used by each worker",
    ["pid"],
    multiprocess_mode="liveall",
)
WORKER_RSS = Gauge(
    "serving_worker_resident_memory_bytes",
    "Resident memory of each worker",
    ["pid"],
    multiprocess_mode="liveall",
)
WORKER_READY = Gauge(
    "serving_worker_ready", "1 once a worker's model is loaded and warm", ["pid"], multiprocess_mode="liveall"
)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:  # noqa: PTH123 - a tiny read on every scrape
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def update_process_metrics() -> None:
    pid = str(os.getpid())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    WORKER_CPU.labels(pid).set(usage.ru_utime + usage.ru_stime)
    WORKER_RSS.labels(pid).set(_resident_bytes())


def set_ready(ready: bool) -> None:
    WORKER_READY.labels(str(os.getpid())).set(1 if ready else 0)


def observe_stages(stages: dict[str, float]) -> None:
    """``stages`` in milliseconds, as in the response's ``timings_ms``."""
    for stage, milliseconds in stages.items():
        STAGE_LATENCY.labels(stage).observe(milliseconds / 1000.0)


def render() -> tuple[bytes, str]:
    update_process_metrics()
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_exited() -> None:
    if multiprocess_enabled():
        multiprocess.mark_process_dead(os.getpid())
