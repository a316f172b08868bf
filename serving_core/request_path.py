"""The request path of ``/predict`` and ``/predict/batch``, top to bottom: parse the body -> decode it within
the limits -> ``predictor.predict`` (one batched call) -> the typed response with its timings.

The two timed steps in the middle, ``decode_timed`` and ``infer_timed``, are also the steps of every other
protocol the service speaks (``serving_core.oip``): the same executor, limits, predictor call and timings.

It is public so that whatever measures the service's own code (the bench's in-process ceiling) runs exactly
what the routes run. Where the blocking work runs is the caller's choice, an ``Executor``: the service moves
decode and inference to worker threads bounded by its limiters (``ThreadExecutor``) so the event loop keeps
accepting connections; an in-process loop runs them on its own thread (``InlineExecutor``). Metrics belong
to the HTTP layer (``serving_core.routes``), not to the path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread
import numpy as np
from starlette.requests import Request
from starlette.types import Message

from serving_core import decode
from serving_core.errors import SchemaError, ServingError
from serving_core.predictor import BatchOutput, Predictor
from serving_core.schemas import (
    BatchItemResult,
    BatchPredictResponse,
    BatchTimings,
    ClassScore,
    ErrorDetail,
    PredictResponse,
    Timings,
)
from serving_core.settings import ServingSettings

T = TypeVar("T")


class Executor(Protocol):
    """Runs the two blocking steps of a request: decoding and inference."""

    async def decode(self, work: Callable[[], T]) -> T: ...

    async def infer(self, predictor: Predictor, images: Sequence[np.ndarray]) -> BatchOutput: ...


class ThreadExecutor:
    """Worker threads: at most ``decode_concurrency`` decodes and ``inference_concurrency`` inferences at
    once.

    Without a bound every request in flight decodes at once: on a worker that infers one image at a time that
    only multiplies full-size decoded images in memory and thrashes the cache.
    """

    def __init__(self, decode_concurrency: int, inference_concurrency: int) -> None:
        self.decode_limiter = anyio.CapacityLimiter(decode_concurrency)
        self.inference_limiter = anyio.CapacityLimiter(inference_concurrency)

    async def decode(self, work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(work, limiter=self.decode_limiter)

    async def infer(self, predictor: Predictor, images: Sequence[np.ndarray]) -> BatchOutput:
        return await anyio.to_thread.run_sync(predictor.predict, images, limiter=self.inference_limiter)


class InlineExecutor:
    """Everything on the calling thread: the request path with no thread hops."""

    async def decode(self, work: Callable[[], T]) -> T:
        return work()

    async def infer(self, predictor: Predictor, images: Sequence[np.ndarray]) -> BatchOutput:
        return predictor.predict(images)


def decode_limits(settings: ServingSettings, predictor: Predictor) -> decode.DecodeLimits:
    return decode.DecodeLimits(
        max_image_pixels=settings.max_image_pixels,
        max_aspect_ratio=settings.max_aspect_ratio,
        draft_min_side=predictor.resize_size if settings.jpeg_draft else None,
    )


def resolve_top_k(settings: ServingSettings, requested: int | None, predictor: Predictor) -> int:
    classes = len(predictor.labels)
    if requested is None:
        return min(settings.top_k, classes)
    if not 1 <= requested <= classes:
        raise SchemaError(f"top_k must be between 1 and {classes}, got {requested}")
    return requested


def prediction(
    probabilities: np.ndarray, predictor: Predictor, variant: str, top_k: int, timings: Timings
) -> PredictResponse:
    """The response for one image's probability row."""
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    labels = predictor.labels
    scores = [
        ClassScore(label=labels[i], class_index=int(i), confidence=float(probabilities[i])) for i in order
    ]
    best = scores[0]
    return PredictResponse(
        label=best.label,
        class_index=best.class_index,
        confidence=best.confidence,
        top_k=scores,
        variant=variant,
        model_hash=predictor.model_hash,
        timings_ms=timings,
    )


def _milliseconds(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


async def decode_timed(executor: Executor, work: Callable[[], T]) -> tuple[T, float]:
    """``work`` (body -> pixels) on the executor's decode slot; milliseconds of the work itself."""

    def timed() -> tuple[T, float]:
        started = time.perf_counter()
        result = work()
        return result, _milliseconds(started)

    return await executor.decode(timed)


@dataclass(frozen=True)
class Inferred:
    probabilities: np.ndarray
    """(len(images), num_classes) softmax rows, in the order of the images."""
    timings: Timings


async def infer_timed(
    executor: Executor, predictor: Predictor, images: Sequence[np.ndarray], started: float, decode_ms: float
) -> Inferred:
    """One batched ``predictor.predict`` of decoded images; ``timings.total`` counts from ``started``."""
    output = await executor.infer(predictor, images)
    timings = Timings(
        decode=decode_ms,
        preprocess=round(output.preprocess_ms, 3),
        inference=round(output.inference_ms, 3),
        total=_milliseconds(started),
    )
    return Inferred(output.probabilities, timings)


async def predict_one(
    request: Request,
    query_top_k: int | None,
    predictor: Predictor,
    settings: ServingSettings,
    executor: Executor,
) -> PredictResponse:
    """One image from any accepted body form; ``timings_ms.total`` counts from this call."""
    started = time.perf_counter()
    parsed = await decode.read_single(request, settings.max_body_bytes, query_top_k)
    limits = decode_limits(settings, predictor)
    image, decode_ms = await decode_timed(executor, lambda: decode.decode_image(parsed.image.data, limits))
    wanted = resolve_top_k(settings, parsed.top_k, predictor)
    inferred = await infer_timed(executor, predictor, [image], started, decode_ms)
    return prediction(inferred.probabilities[0], predictor, settings.variant, wanted, inferred.timings)


async def predict_many(
    request: Request,
    query_top_k: int | None,
    predictor: Predictor,
    settings: ServingSettings,
    executor: Executor,
) -> BatchPredictResponse:
    """Several images in ONE inference call; an item that fails to decode gets its own error entry."""
    started = time.perf_counter()
    parsed = await decode.read_batch(request, settings.max_body_bytes, settings.max_batch_items, query_top_k)
    wanted = resolve_top_k(settings, parsed.top_k, predictor)
    limits = decode_limits(settings, predictor)

    def decode_all() -> list[np.ndarray | ServingError]:
        decoded: list[np.ndarray | ServingError] = []
        for item in parsed.images:
            if isinstance(item, ServingError):
                decoded.append(item)
                continue
            try:
                decoded.append(decode.decode_image(item.data, limits))
            except ServingError as exc:
                decoded.append(exc)
        return decoded

    decoded, decode_ms = await decode_timed(executor, decode_all)
    good = [(index, image) for index, image in enumerate(decoded) if isinstance(image, np.ndarray)]
    rows: dict[int, np.ndarray] = {}
    if good:
        inferred = await infer_timed(executor, predictor, [image for _, image in good], started, decode_ms)
        rows = {index: inferred.probabilities[row] for row, (index, _) in enumerate(good)}
        timings = inferred.timings
    else:
        timings = Timings(decode=decode_ms, preprocess=0.0, inference=0.0, total=_milliseconds(started))
    results = []
    for index, item in enumerate(decoded):
        filename = getattr(parsed.images[index], "filename", None)
        if isinstance(item, ServingError):
            detail = ErrorDetail(code=item.code, message=item.message)
            results.append(BatchItemResult(index=index, filename=filename, error=detail))
        else:
            scored = prediction(rows[index], predictor, settings.variant, wanted, timings)
            results.append(BatchItemResult(index=index, filename=filename, prediction=scored))
    return BatchPredictResponse(
        variant=settings.variant,
        model_hash=predictor.model_hash,
        batch_size=len(good),
        succeeded=len(good),
        failed=len(decoded) - len(good),
        results=results,
        timings_ms=BatchTimings(**timings.model_dump()),
    )


def request_from_body(body: bytes, headers: Mapping[str, str], path: str = "/predict") -> Request:
    """A POST request carrying ``body``, for running the request path without an HTTP server."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ],
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)
