"""The ``/v2`` endpoints of the KServe Open Inference Protocol (REST): server and model metadata, liveness
and readiness, and inference, with the ``/versions/{model_version}`` form of every model endpoint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from serving_core.oip import codec, inference
from serving_core.oip.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    OipErrorResponse,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from serving_core.routes import Serving
from serving_core.state import ServingApp

SERVER_NAME = "serving-lab"
ModelName = Annotated[str, Path(description="the variant's name (VARIANT) or its model card's name")]
ModelVersion = Annotated[str, Path(description="the served artifact's model_hash (as in /ready)")]
EXTENSIONS = [codec.BINARY_EXTENSION]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": OipErrorResponse} for status in statuses}


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``#/$defs/...`` reference replaced by its definition (the OpenAPI document has
    no ``$defs`` for a request body it only describes)."""
    if isinstance(schema, dict):
        reference = schema.get("$ref", "")
        if reference.startswith("#/$defs/"):
            return _inlined(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema


def _infer_openapi() -> dict[str, Any]:
    request_schema = InferenceRequest.model_json_schema()
    json_body = _inlined(request_schema, request_schema.get("$defs", {}))
    binary_body = {
        "type": "string",
        "format": "binary",
        "description": "binary tensor data extension: the JSON request (as many bytes as "
        f"{codec.HEADER_LENGTH_HEADER} says), then each binary input's bytes",
    }
    return {
        "parameters": [
            {
                "name": codec.HEADER_LENGTH_HEADER,
                "in": "header",
                "required": False,
                "schema": {"type": "integer", "minimum": 1},
                "description": "length of the JSON part of a body that carries binary tensors",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                codec.JSON_MEDIA_TYPE: {"schema": json_body},
                codec.BINARY_MEDIA_TYPE: {"schema": binary_body},
            },
        },
    }


INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": InferenceResponse,
        "content": {codec.BINARY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON, or (binary outputs requested) the JSON response followed by the outputs' bytes",
    },
    **_errors(400, 404, 413, 415, 503),
}


def oip_router() -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["KServe Open Inference Protocol v2"])

    @router.get("", response_model=ServerMetadata, summary="OIP server metadata")
    @router.get("/", response_model=ServerMetadata, include_in_schema=False)
    async def server_metadata(request: Request) -> ServerMetadata:
        return ServerMetadata(name=SERVER_NAME, version=request.app.version, extensions=EXTENSIONS)

    @router.get("/health/live", response_model=ServerLive, summary="OIP server liveness")
    async def server_live() -> ServerLive:
        return ServerLive(live=True)

    @router.get(
        "/health/ready",
        response_model=ServerReady,
        responses=_errors(503),
        summary="OIP server readiness: 200 once the model is loaded and warmed, 503 before",
    )
    async def server_ready(serving: Serving) -> ServerReady:
        serving.models.require()
        return ServerReady(ready=True, live=True)

    def metadata(serving: ServingApp, model_name: str, model_version: str | None) -> ModelMetadata:
        predictor = serving.models.require()
        inference.resolve_model(serving, predictor, model_name, model_version)
        return inference.model_metadata(serving, predictor)

    def ready(serving: ServingApp, model_name: str, model_version: str | None) -> ModelReady:
        predictor = serving.models.require()
        name = inference.resolve_model(serving, predictor, model_name, model_version)
        return ModelReady(name=name, ready=True)

    metadata_responses = _errors(404, 503)

    @router.get(
        "/models/{model_name}",
        response_model=ModelMetadata,
        responses=metadata_responses,
        summary="OIP model metadata: the image input and the outputs, with datatypes and shapes",
    )
    async def model_metadata(serving: Serving, model_name: ModelName) -> ModelMetadata:
        return metadata(serving, model_name, None)

    @router.get(
        "/models/{model_name}/versions/{model_version}",
        response_model=ModelMetadata,
        responses=metadata_responses,
        summary="OIP model metadata of one version (the served model_hash)",
    )
    async def model_version_metadata(
        serving: Serving, model_name: ModelName, model_version: ModelVersion
    ) -> ModelMetadata:
        return metadata(serving, model_name, model_version)

    @router.get(
        "/models/{model_name}/ready",
        response_model=ModelReady,
        responses=metadata_responses,
        summary="OIP model readiness",
    )
    async def model_ready(serving: Serving, model_name: ModelName) -> ModelReady:
        return ready(serving, model_name, None)

    @router.get(
        "/models/{model_name}/versions/{model_version}/ready",
        response_model=ModelReady,
        responses=metadata_responses,
        summary="OIP model readiness of one version",
    )
    async def model_version_ready(
        serving: Serving, model_name: ModelName, model_version: ModelVersion
    ) -> ModelReady:
        return ready(serving, model_name, model_version)

    infer_openapi = _infer_openapi()

    @router.post(
        "/models/{model_name}/infer",
        response_model=InferenceResponse,
        responses=INFER_RESPONSES,
        openapi_extra=infer_openapi,
        summary="OIP inference: UINT8 [N, H, W, 3] pixels or BYTES [N] encoded images, JSON or binary",
    )
    async def model_infer(request: Request, serving: Serving, model_name: ModelName) -> Response:
        return await inference.infer(request, serving, model_name, None)

    @router.post(
        "/models/{model_name}/versions/{model_version}/infer",
        response_model=InferenceResponse,
        responses=INFER_RESPONSES,
        openapi_extra=infer_openapi,
        summary="OIP inference on one version (the served model_hash)",
    )
    async def model_version_infer(
        request: Request, serving: Serving, model_name: ModelName, model_version: ModelVersion
    ) -> Response:
        return await inference.infer(request, serving, model_name, model_version)

    return router
