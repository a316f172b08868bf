"""``create_app(predictor_factory)``: the FastAPI app every Python variant serves.

The request path reads top to bottom in ``predict``: parse the body -> decode (limits) -> predictor.predict
(one batched call, off the event loop) -> response with timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import platform
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from serving_core import decode, metrics
from serving_core.errors import (
    AdminDisabledError,
    SchemaError,
    ServingError,
    UnauthorizedError,
    install_error_handlers,
)
from serving_core.middleware import ServingMiddleware
from serving_core.model_holder import ModelHolder
from serving_core.predictor import Predictor, PredictorFactory
from serving_core.schemas import (
    BatchItemResult,
    BatchPredictRequest,
    BatchPredictResponse,
    BatchTimings,
    ClassScore,
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    InfoResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
    ReloadResponse,
    Timings,
)
from serving_core.settings import ServingSettings

PROCESS_METRICS_PERIOD_SECONDS = 2.0
T = TypeVar("T")
TopKQuery = Annotated[int | None, Query(ge=1, description="classes to return (1..num_classes)")]


def _error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in statuses}


def _body_schema(model: type, file_field: str, max_items: int | None = None) -> dict[str, Any]:
    """The request body forms of a predict route; ``max_items`` set: a batch route of at most that many."""
    binary: dict[str, Any] = {"type": "string", "format": "binary"}
    json_schema = model.model_json_schema(by_alias=False)
    many = max_items is not None
    if many:
        json_schema["properties"]["images"]["maxItems"] = max_items
    file_schema = {"type": "array", "items": binary, "minItems": 1, "maxItems": max_items} if many else binary
    content: dict[str, Any] = {
        "application/json": {"schema": json_schema},
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {file_field: file_schema}, "required": [file_field]}
        },
    }
    if not many:
        for media_type in ("image/jpeg", "image/png", "image/webp"):
            content[media_type] = {"schema": binary}
    return {"requestBody": {"required": True, "content": content}}


def _milliseconds(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("fastapi", "starlette", "uvicorn", "pydantic", "numpy", "pillow", "prometheus-client"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


class ServingApp:
    """The routes' shared state: settings, the model holder, limits and the inference concurrency limiter."""

    def __init__(self, factory: PredictorFactory, settings: ServingSettings) -> None:
        self.settings = settings
        self.models = ModelHolder(factory, settings)
        self.started_at = datetime.now(UTC)
        self.started_monotonic = time.monotonic()
        self.inference_limiter = anyio.CapacityLimiter(settings.inference_concurrency)
        # Without a bound every request in flight decodes at once: on a worker that infers one image at a time
        # that only multiplies full-size decoded images in memory and thrashes the cache.
        self.decode_limiter = anyio.CapacityLimiter(settings.decode_concurrency)

    def limits_for(self, predictor: Predictor) -> decode.DecodeLimits:
        return decode.DecodeLimits(
            max_image_pixels=self.settings.max_image_pixels,
            max_aspect_ratio=self.settings.max_aspect_ratio,
            draft_min_side=predictor.resize_size if self.settings.jpeg_draft else None,
        )

    def resolve_top_k(self, requested: int | None, predictor: Predictor) -> int:
        classes = len(predictor.labels)
        if requested is None:
            return min(self.settings.top_k, classes)
        if not 1 <= requested <= classes:
            raise SchemaError(f"top_k must be between 1 and {classes}, got {requested}")
        return requested

    async def off_loop_decode(self, decode_call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(decode_call, limiter=self.decode_limiter)

    async def infer(self, predictor: Predictor, images: Sequence[np.ndarray]) -> Any:
        return await anyio.to_thread.run_sync(predictor.predict, images, limiter=self.inference_limiter)

    def check_admin(self, authorization: str | None) -> None:
        token = self.settings.admin_token
        if token is None or not token.get_secret_value():
            raise AdminDisabledError("admin endpoints are disabled: no ADMIN_TOKEN is configured")
        scheme, _, presented = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise UnauthorizedError(
                "a valid 'Authorization: Bearer <ADMIN_TOKEN>' header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )


def _decode_timed(data: bytes, limits: decode.DecodeLimits) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    image = decode.decode_image(data, limits)
    return image, _milliseconds(started)


def _scores(probabilities: np.ndarray, labels: list[str], top_k: int) -> list[ClassScore]:
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [
        ClassScore(label=labels[i], class_index=int(i), confidence=float(probabilities[i])) for i in order
    ]


def _prediction(
    probabilities: np.ndarray, predictor: Predictor, variant: str, top_k: int, timings: Timings
) -> PredictResponse:
    scores = _scores(probabilities, predictor.labels, top_k)
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


def create_app(predictor_factory: PredictorFactory, settings: ServingSettings) -> FastAPI:
    serving = ServingApp(predictor_factory, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        metrics.set_ready(False)
        background = [
            asyncio.create_task(serving.models.initial_load()),
            asyncio.create_task(_refresh_process_metrics()),
            asyncio.create_task(serving.models.follow_reloads()),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            serving.models.unmark_ready()
            metrics.mark_worker_exited()

    app = FastAPI(
        title=f"serving-lab {settings.variant}",
        description="One image-classification predict API, the same on every variant.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.serving = serving
    install_error_handlers(app)
    app.add_middleware(
        ServingMiddleware, max_body_bytes=settings.max_body_bytes, max_in_flight=settings.max_in_flight
    )

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=_error_responses(400, 413, 415, 422, 503),
        openapi_extra=_body_schema(PredictRequest, decode.SINGLE_FILE_FIELD),
        summary="Classify one image (JSON base64, raw image bytes, or multipart field 'file')",
    )
    @app.post("/predict/", include_in_schema=False)
    async def predict(request: Request, top_k: TopKQuery = None) -> Response:
        started = time.perf_counter()
        predictor = serving.models.require()
        parsed = await decode.read_single(request, settings.max_body_bytes, top_k)
        limits = serving.limits_for(predictor)
        image, decode_ms = await serving.off_loop_decode(lambda: _decode_timed(parsed.image.data, limits))
        wanted = serving.resolve_top_k(parsed.top_k, predictor)
        output = await serving.infer(predictor, [image])
        timings = Timings(
            decode=decode_ms,
            preprocess=round(output.preprocess_ms, 3),
            inference=round(output.inference_ms, 3),
            total=_milliseconds(started),
        )
        metrics.observe_stages(timings.model_dump())
        metrics.BATCH_SIZE.observe(1)
        body = _prediction(output.probabilities[0], predictor, settings.variant, wanted, timings)
        return JSONResponse(body.model_dump())

    @app.post(
        "/predict/batch",
        response_model=BatchPredictResponse,
        responses=_error_responses(400, 413, 415, 422, 503),
        openapi_extra=_body_schema(BatchPredictRequest, decode.BATCH_FILE_FIELD, settings.max_batch_items),
        summary="Classify several images in ONE batched inference call; a bad item gets its own error entry",
    )
    async def predict_batch(request: Request, top_k: TopKQuery = None) -> Response:
        started = time.perf_counter()
        predictor = serving.models.require()
        parsed = await decode.read_batch(request, settings.max_body_bytes, settings.max_batch_items, top_k)
        wanted = serving.resolve_top_k(parsed.top_k, predictor)
        limits = serving.limits_for(predictor)

        def decode_all() -> tuple[list[np.ndarray | ServingError], float]:
            decode_started = time.perf_counter()
            decoded: list[np.ndarray | ServingError] = []
            for item in parsed.images:
                if isinstance(item, ServingError):
                    decoded.append(item)
                    continue
                try:
                    decoded.append(decode.decode_image(item.data, limits))
                except ServingError as exc:
                    decoded.append(exc)
            return decoded, _milliseconds(decode_started)

        decoded, decode_ms = await serving.off_loop_decode(decode_all)
        good = [(index, image) for index, image in enumerate(decoded) if isinstance(image, np.ndarray)]
        rows: dict[int, np.ndarray] = {}
        preprocess_ms = inference_ms = 0.0
        if good:
            output = await serving.infer(predictor, [image for _, image in good])
            rows = {index: output.probabilities[row] for row, (index, _) in enumerate(good)}
            preprocess_ms, inference_ms = output.preprocess_ms, output.inference_ms
            metrics.BATCH_SIZE.observe(len(good))
        total_ms = _milliseconds(started)
        item_timings = Timings(
            decode=decode_ms,
            preprocess=round(preprocess_ms, 3),
            inference=round(inference_ms, 3),
            total=total_ms,
        )
        results = []
        for index, item in enumerate(decoded):
            filename = getattr(parsed.images[index], "filename", None)
            if isinstance(item, ServingError):
                detail = ErrorDetail(code=item.code, message=item.message)
                results.append(BatchItemResult(index=index, filename=filename, error=detail))
            else:
                prediction = _prediction(rows[index], predictor, settings.variant, wanted, item_timings)
                results.append(BatchItemResult(index=index, filename=filename, prediction=prediction))
        metrics.observe_stages(item_timings.model_dump())
        body = BatchPredictResponse(
            variant=settings.variant,
            model_hash=predictor.model_hash,
            batch_size=len(good),
            succeeded=len(good),
            failed=len(decoded) - len(good),
            results=results,
            timings_ms=BatchTimings(**item_timings.model_dump()),
        )
        return JSONResponse(body.model_dump())

    @app.get("/health", response_model=HealthResponse, summary="Liveness: the process answers")
    @app.get("/", response_model=HealthResponse, summary="Liveness (the anchor's health check path)")
    async def health() -> HealthResponse:
        return HealthResponse(status="ok")

    @app.get(
        "/ready",
        response_model=ReadyResponse,
        responses=_error_responses(503),
        summary="200 once the model is loaded and warmed, 503 before",
    )
    async def ready() -> ReadyResponse:
        predictor = serving.models.require()
        return ReadyResponse(ready=True, variant=settings.variant, model_hash=predictor.model_hash)

    @app.get(
        "/info", response_model=InfoResponse, summary="Variant, runtime, versions, model card, concurrency"
    )
    async def info() -> InfoResponse:
        predictor = serving.models.predictor
        return InfoResponse(
            variant=settings.variant,
            runtime=predictor.describe()
            if predictor
            else {"loaded": False, "error": serving.models.load_error},
            versions={**_library_versions(), **(predictor.versions() if predictor else {})},
            model_hash=predictor.model_hash if predictor else None,
            model_card=predictor.loaded.card.model_dump(mode="json") if predictor else None,
            workers=settings.workers,
            threads=settings.threads,
            inter_op_threads=settings.inter_op_threads,
            inference_concurrency=settings.inference_concurrency,
            decode_concurrency=settings.decode_concurrency,
            max_in_flight=settings.max_in_flight,
            max_body_bytes=settings.max_body_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_batch_items=settings.max_batch_items,
            jpeg_draft=settings.jpeg_draft,
            pid=os.getpid(),
            started_at=serving.started_at.isoformat(),
            uptime_seconds=round(time.monotonic() - serving.started_monotonic, 3),
            reloads=serving.models.reloads,
        )

    @app.get(
        "/metrics",
        summary="Prometheus exposition (aggregated over all workers)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def prometheus_metrics() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses=_error_responses(401, 403, 422),
        summary="Re-load the configured artifacts atomically (Authorization: Bearer ADMIN_TOKEN)",
    )
    async def admin_reload(authorization: Annotated[str | None, Header()] = None) -> ReloadResponse:
        serving.check_admin(authorization)
        outcome = await serving.models.reload()
        return ReloadResponse(
            reloaded=True,
            previous_model_hash=outcome.previous_model_hash,
            model_hash=outcome.model_hash,
            load_ms=round(outcome.load_ms, 1),
        )

    return app


async def _refresh_process_metrics() -> None:
    while True:
        metrics.update_process_metrics()
        await asyncio.sleep(PROCESS_METRICS_PERIOD_SECONDS)
