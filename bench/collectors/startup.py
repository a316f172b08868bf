"""Cold starts: launch -> first 200 on the ready path; first request latency with warmup off vs warm."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.collectors.target import ServiceHandle, ServiceRunner
from bench.payloads import Payload, predicted_class
from bench.registry import Variant
from bench.results import not_measured


class StartupMeasurementError(RuntimeError):
    pass


def _predict_ms(client: httpx.Client, service: ServiceHandle, payload: Payload) -> float:
    """One request's latency; a failure unless it answers 200 with a prediction (in the variant's format)."""
    variant = service.variant
    started = time.perf_counter()
    answer = client.post(service.url(variant.predict_path), content=payload.body, headers=payload.headers)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    if predicted_class(variant.payload_format, answer.status_code, answer.headers, answer.content) is None:
        raise StartupMeasurementError(
            f"{variant.name}: predict answered HTTP {answer.status_code} without a prediction"
        )
    return elapsed_ms


def measure_startup(
    runner: ServiceRunner,
    variant: Variant,
    payload: Payload,
    *,
    runs: int,
    cold_runs: int,
    warm_requests: int,
    log_dir: Path,
    on_step: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``runs`` normal starts (time to ready, first request after ready) and ``cold_runs`` starts with
    warmup off (first request vs the median of the ``warm_requests`` that follow it)."""
    reason = runner.startup_unmeasurable(variant)
    if reason is not None:
        return not_measured(reason)
    ready_s: list[float] = []
    first_request_ms: list[float] = []
    cold_first_request_ms: list[float] = []
    warm_request_ms: list[float] = []
    with httpx.Client(timeout=60.0) as client:
        for index in range(runs):
            service = runner.start(variant, log_path=log_dir / f"startup-{index}.log")
            try:
                ready_s.append(runner.wait_ready(service))
                first_request_ms.append(_predict_ms(client, service, payload))
            finally:
                runner.stop(service)
            on_step()
        for index in range(cold_runs):
            service = runner.start(variant, cold=True, log_path=log_dir / f"cold-{index}.log")
            try:
                runner.wait_ready(service)
                cold_first_request_ms.append(_predict_ms(client, service, payload))
                warm = [_predict_ms(client, service, payload) for _ in range(warm_requests)]
                warm_request_ms.append(statistics.median(warm))
            finally:
                runner.stop(service)
            on_step()
    return {
        "ready_s": ready_s,
        "first_request_ms": first_request_ms,
        "cold_first_request_ms": cold_first_request_ms,
        "warm_request_ms": warm_request_ms,
        "payload": str(payload.source),
    }
