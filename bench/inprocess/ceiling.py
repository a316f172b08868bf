"""The in-process ceiling: the service's request path (body -> decode -> predict -> response) in a plain loop.

The same functions the HTTP handler calls, in the same order, minus the HTTP server: what is left between
this figure and the service's throughput is the cost of serving (HTTP parsing, the event loop, thread hops).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from starlette.responses import JSONResponse

from bench.stats import latency_summary
from serving_core import decode
from serving_core.app import ServingApp, _prediction
from serving_core.predictor import Predictor
from serving_core.schemas import PredictRequest, Timings

STAGES = ("decode", "preprocess", "inference", "postprocess")


def image_bytes_of(body: bytes, payload_format: str) -> bytes:
    """What the service's body parsing yields for the forms the in-process loop supports."""
    if payload_format == "json":
        return decode.decode_base64(PredictRequest.model_validate_json(body).image)
    if payload_format == "raw":
        return body
    raise ValueError(f"the in-process loop takes json or raw payloads, not {payload_format!r}")


def one_request(
    predictor: Predictor, serving: ServingApp, body: bytes, payload_format: str
) -> dict[str, float]:
    """Milliseconds per stage (and total) of one request through the service's own code."""
    started = time.perf_counter()
    image = decode.decode_image(image_bytes_of(body, payload_format), serving.limits_for(predictor))
    decoded = time.perf_counter()
    output = predictor.predict([image])
    predicted = time.perf_counter()
    timings = Timings(
        decode=(decoded - started) * 1000.0,
        preprocess=output.preprocess_ms,
        inference=output.inference_ms,
        total=(predicted - started) * 1000.0,
    )
    top_k = serving.resolve_top_k(None, predictor)
    response = _prediction(output.probabilities[0], predictor, serving.settings.variant, top_k, timings)
    JSONResponse(response.model_dump())  # serialization is part of the service's per-request work
    finished = time.perf_counter()
    return {
        "decode": timings.decode,
        "preprocess": output.preprocess_ms,
        "inference": output.inference_ms,
        "postprocess": (finished - predicted) * 1000.0,
        "total": (finished - started) * 1000.0,
    }


def run_ceiling(
    predictor: Predictor,
    serving: ServingApp,
    body: bytes,
    payload_format: str,
    iterations: int,
    warmup: int,
    max_seconds: float,
) -> dict[str, Any]:
    """``warmup`` untimed requests, then up to ``iterations`` timed ones (fewer if time is up)."""
    for _ in range(warmup):
        one_request(predictor, serving, body, payload_format)
    samples: list[dict[str, float]] = []
    started = time.perf_counter()
    while len(samples) < iterations and (time.perf_counter() - started < max_seconds or len(samples) < 10):
        samples.append(one_request(predictor, serving, body, payload_format))
    elapsed = time.perf_counter() - started
    totals = [sample["total"] for sample in samples]
    summary = latency_summary(totals)
    return {
        "iterations": len(samples),
        "warmup": warmup,
        "elapsed_s": elapsed,
        "throughput_rps": len(samples) / elapsed,
        "latency_ms": {**summary, "min": float(np.min(totals))},
        "stages_ms": {stage: float(np.mean([s[stage] for s in samples])) for stage in STAGES},
        "stages_p50_ms": {stage: float(np.median([s[stage] for s in samples])) for stage in STAGES},
        "samples_total_ms": totals,
    }
