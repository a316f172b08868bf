"""Request and response models: the API every variant speaks, and the OpenAPI document the conformance suite
checks.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _CamelModel(BaseModel):
    """Accepts both snake_case and the anchor's camelCase keys (``top_k`` or ``topK``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PredictRequest(_CamelModel):
    image: str = Field(
        min_length=1,
        description="the image file (JPEG, PNG or WebP) in base64; a data: URL prefix is accepted",
    )
    top_k: int | None = Field(None, ge=1, description="classes to return, 1..num_classes; default from TOP_K")


class BatchPredictRequest(_CamelModel):
    images: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="image files in base64, run as one batched inference"
    )
    top_k: int | None = Field(None, ge=1)


class ClassScore(BaseModel):
    label: str
    class_index: int
    confidence: float


class Timings(BaseModel):
    decode: float = Field(description="milliseconds spent turning the body into pixels")
    preprocess: float = Field(
        description="milliseconds of preprocessing outside the model (0 when fused in the graph)"
    )
    inference: float = Field(description="milliseconds in the runtime's forward call")
    total: float = Field(description="milliseconds from reading the body to building the response")


class PredictResponse(BaseModel):
    label: str
    class_index: int
    confidence: float
    top_k: list[ClassScore]
    variant: str
    model_hash: str = Field(description="first 12 hex digits of the served artifact's sha256")
    timings_ms: Timings


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class BatchItemResult(BaseModel):
    index: int
    filename: str | None = None
    prediction: PredictResponse | None = None
    error: ErrorDetail | None = None


class BatchTimings(BaseModel):
    decode: float
    preprocess: float
    inference: float
    total: float


class BatchPredictResponse(BaseModel):
    variant: str
    model_hash: str
    batch_size: int = Field(description="images that went into the one batched inference call")
    succeeded: int
    failed: int
    results: list[BatchItemResult]
    timings_ms: BatchTimings


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    ready: bool
    variant: str
    model_hash: str | None = None


class InfoResponse(BaseModel):
    variant: str
    protocols: list[str] = Field(
        default_factory=list,
        description="the APIs served: 'predict' (/predict, /infer) and 'kserve-v2' (the Open Inference "
        "Protocol v2 under /v2)",
    )
    runtime: dict[str, Any]
    versions: dict[str, str]
    model_hash: str | None
    model_card: dict[str, Any] | None
    workers: int
    threads: int
    inter_op_threads: int
    inference_concurrency: int
    decode_concurrency: int
    max_in_flight: int
    max_body_bytes: int
    max_image_pixels: int
    max_batch_items: int
    jpeg_draft: bool
    pid: int
    started_at: str
    uptime_seconds: float
    reloads: int


class ReloadResponse(BaseModel):
    reloaded: bool
    previous_model_hash: str | None
    model_hash: str
    load_ms: float
