"""``POST /predict`` (and ``/predict/``) and ``POST /predict/batch``, and their aliases ``POST /infer`` and
``POST /infer/batch`` (the same handlers: every body form, the same answers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from serving_core import decode, metrics, request_path
from serving_core.routes import Serving, error_responses
from serving_core.schemas import BatchPredictRequest, BatchPredictResponse, PredictRequest, PredictResponse

TopKQuery = Annotated[int | None, Query(ge=1, description="classes to return (1..num_classes)")]


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


def predict_router(max_batch_items: int) -> APIRouter:
    """The predict routes; the batch limit is part of their OpenAPI document."""
    router = APIRouter()

    @router.post(
        "/predict",
        response_model=PredictResponse,
        responses=error_responses(400, 413, 415, 422, 503),
        openapi_extra=_body_schema(PredictRequest, decode.SINGLE_FILE_FIELD),
        summary="Classify one image (JSON base64, raw image bytes, or multipart field 'file')",
    )
    @router.post("/predict/", include_in_schema=False)
    @router.post(
        "/infer",
        response_model=PredictResponse,
        responses=error_responses(400, 413, 415, 422, 503),
        openapi_extra=_body_schema(PredictRequest, decode.SINGLE_FILE_FIELD),
        summary="Alias of POST /predict",
    )
    async def predict(request: Request, serving: Serving, top_k: TopKQuery = None) -> Response:
        predictor = serving.models.require()
        body = await request_path.predict_one(request, top_k, predictor, serving.settings, serving.executor)
        metrics.observe_stages(body.timings_ms.model_dump())
        metrics.BATCH_SIZE.observe(1)
        return JSONResponse(body.model_dump())

    @router.post(
        "/predict/batch",
        response_model=BatchPredictResponse,
        responses=error_responses(400, 413, 415, 422, 503),
        openapi_extra=_body_schema(BatchPredictRequest, decode.BATCH_FILE_FIELD, max_batch_items),
        summary="Classify several images in ONE batched inference call; a bad item gets its own error entry",
    )
    @router.post(
        "/infer/batch",
        response_model=BatchPredictResponse,
        responses=error_responses(400, 413, 415, 422, 503),
        openapi_extra=_body_schema(BatchPredictRequest, decode.BATCH_FILE_FIELD, max_batch_items),
        summary="Alias of POST /predict/batch",
    )
    async def predict_batch(request: Request, serving: Serving, top_k: TopKQuery = None) -> Response:
        predictor = serving.models.require()
        body = await request_path.predict_many(request, top_k, predictor, serving.settings, serving.executor)
        if body.batch_size:
            metrics.BATCH_SIZE.observe(body.batch_size)
        metrics.observe_stages(body.timings_ms.model_dump())
        return JSONResponse(body.model_dump())

    return router
