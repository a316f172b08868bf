"""Liveness, readiness, ``/info``, ``/metrics`` and ``POST /admin/reload``."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from importlib import metadata
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from serving_core import metrics
from serving_core.contract_document import PROTOCOLS  # create_app serves them all, on every variant
from serving_core.routes import Serving, error_responses
from serving_core.schemas import HealthResponse, InfoResponse, ReadyResponse, ReloadResponse

router = APIRouter()


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "numpy",
        "pillow",
        "simplejpeg",
        "prometheus-client",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


@router.get("/health", response_model=HealthResponse, summary="Liveness: the process answers")
@router.get("/", response_model=HealthResponse, summary="Liveness (the anchor's health check path)")
async def health() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses=error_responses(503),
    summary="200 once the model is loaded and warmed, 503 before",
)
async def ready(serving: Serving) -> ReadyResponse:
    predictor = serving.models.require()
    return ReadyResponse(ready=True, variant=serving.settings.variant, model_hash=predictor.model_hash)


@router.get(
    "/info", response_model=InfoResponse, summary="Variant, runtime, versions, model card, concurrency"
)
async def info(serving: Serving) -> InfoResponse:
    settings = serving.settings
    predictor = serving.models.predictor
    return InfoResponse(
        variant=settings.variant,
        protocols=PROTOCOLS,
        runtime=predictor.describe() if predictor else {"loaded": False, "error": serving.models.load_error},
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


@router.get(
    "/metrics",
    summary="Prometheus exposition (aggregated over all workers)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics() -> Response:
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses=error_responses(401, 403, 422),
    summary="Re-load the configured artifacts atomically (Authorization: Bearer ADMIN_TOKEN)",
)
async def admin_reload(
    serving: Serving, authorization: Annotated[str | None, Header()] = None
) -> ReloadResponse:
    serving.check_admin(authorization)
    outcome = await serving.models.reload()
    return ReloadResponse(
        reloaded=True,
        previous_model_hash=outcome.previous_model_hash,
        model_hash=outcome.model_hash,
        load_ms=round(outcome.load_ms, 1),
    )
