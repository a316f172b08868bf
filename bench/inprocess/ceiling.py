"""The in-process ceiling: the service's request path (body -> decode -> predict -> response) in a plain loop.

Each request goes through ``serving_core.request_path.predict_one``, the function the HTTP route calls, with
the work run inline instead of on worker threads, then is serialized as the route serializes it: what is left
between this figure and the service's throughput is the cost of serving (HTTP parsing, the event loop,
thread hops).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from starlette.responses import JSONResponse

from bench.stats import latency_summary
from serving_core import request_path
from serving_core.predictor import Predictor
from serving_core.request_path import InlineExecutor, request_from_body
from serving_core.settings import ServingSettings

STAGES = ("decode", "preprocess", "inference", "postprocess")
INLINE = InlineExecutor()


async def one_request(
    predictor: Predictor, settings: ServingSettings, body: bytes, headers: Mapping[str, str]
) -> dict[str, float]:
    """Milliseconds per stage (and total) of one request through the service's own code.

    ``decode`` is everything before the model (body parsing and image decoding), ``postprocess`` everything
    after it (scores, the response model and its JSON).
    """
    request = request_from_body(body, headers)
    started = time.perf_counter()
    response = await request_path.predict_one(request, None, predictor, settings, INLINE)
    JSONResponse(response.model_dump())  # serialization is part of the service's per-request work
    finished = time.perf_counter()
    timings = response.timings_ms
    # The path's total stops when inference returns; what came before the model is the rest of it.
    before_model = timings.total - timings.preprocess - timings.inference
    after_model = (finished - started) * 1000.0 - timings.total
    return {
        "decode": before_model,
        "preprocess": timings.preprocess,
        "inference": timings.inference,
        "postprocess": after_model,
        "total": (finished - started) * 1000.0,
    }


async def _measure(
    predictor: Predictor,
    settings: ServingSettings,
    body: bytes,
    headers: Mapping[str, str],
    iterations: int,
    warmup: int,
    max_seconds: float,
) -> tuple[list[dict[str, float]], float]:
    for _ in range(warmup):
        await one_request(predictor, settings, body, headers)
    samples: list[dict[str, float]] = []
    started = time.perf_counter()
    while len(samples) < iterations and (time.perf_counter() - started < max_seconds or len(samples) < 10):
        samples.append(await one_request(predictor, settings, body, headers))
    return samples, time.perf_counter() - started


def run_ceiling(
    predictor: Predictor,
    settings: ServingSettings,
    body: bytes,
    headers: Mapping[str, str],
    iterations: int,
    warmup: int,
    max_seconds: float,
) -> dict[str, Any]:
    """``warmup`` untimed requests, then up to ``iterations`` timed ones (fewer if time is up)."""
    # One event loop for the whole run; with inline work nothing in the path waits on it.
    samples, elapsed = asyncio.run(
        _measure(predictor, settings, body, headers, iterations, warmup, max_seconds)
    )
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
