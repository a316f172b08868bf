"""The request path of ``POST /v2/models/{name}[/versions/{version}]/infer``, top to bottom: the model ->
the body (JSON or binary tensors) -> the same uint8 ``(H, W, 3)`` images ``/predict`` decodes, within the same
limits -> ``serving_core.request_path``'s ``decode_timed`` and ``infer_timed`` (the same executor, one
batched ``predictor.predict``, the same timings and metrics) -> the outputs as tensors.

The model answers to the variant's name (``VARIANT``, reported back as ``model_name``) and to its model
card's name; its one version is the served artifact's ``model_hash``, which a reload changes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import Response

from serving_core import decode, metrics, request_path
from serving_core.errors import ServingError, UnsupportedMediaTypeError
from serving_core.oip import codec
from serving_core.oip.errors import ModelNotFoundError
from serving_core.oip.schemas import InferenceRequest, MetadataTensor, ModelMetadata
from serving_core.predictor import Predictor
from serving_core.state import ServingApp

# The fused graph's output name (artifact_contract.PROBABILITIES_OUTPUT; the torch image ships without it).
PROBABILITIES_OUTPUT = "probabilities"
LABEL_OUTPUT = "label"
OUTPUT_NAMES = (PROBABILITIES_OUTPUT, LABEL_OUTPUT)
ACCEPTED_MEDIA_TYPES = ("application/json", "application/octet-stream")
VARIABLE = -1


def resolve_model(serving: ServingApp, predictor: Predictor, name: str, version: str | None) -> str:
    """The model's canonical name (the variant's); 404 for another name or version."""
    variant = serving.settings.variant
    alias = predictor.loaded.card.name
    if name not in (variant, alias):
        raise ModelNotFoundError(f"unknown model '{name}': this server serves '{variant}' (alias '{alias}')")
    if version is not None and version != predictor.model_hash:
        raise ModelNotFoundError(
            f"model '{variant}' has no version '{version}'; it serves version '{predictor.model_hash}'"
        )
    return variant


def model_metadata(serving: ServingApp, predictor: Predictor) -> ModelMetadata:
    return ModelMetadata(
        name=serving.settings.variant,
        versions=[predictor.model_hash],
        platform=predictor.runtime,
        inputs=[
            MetadataTensor(
                name=codec.IMAGE_INPUT,
                datatype=codec.UINT8,
                shape=[VARIABLE, VARIABLE, VARIABLE, codec.CHANNELS],
            )
        ],
        outputs=[
            MetadataTensor(
                name=PROBABILITIES_OUTPUT, datatype=codec.FP32, shape=[VARIABLE, len(predictor.labels)]
            ),
            MetadataTensor(name=LABEL_OUTPUT, datatype=codec.BYTES, shape=[VARIABLE]),
        ],
    )


def _images(batch: codec.ImageBatch, limits: decode.DecodeLimits) -> list[np.ndarray]:
    if isinstance(batch, np.ndarray):
        return list(batch)  # N (H, W, 3) views, no copy
    images = []
    for index, data in enumerate(batch):
        try:
            images.append(decode.decode_image(data, limits))
        except ServingError as exc:
            raise type(exc)(f"image {index} of input '{codec.IMAGE_INPUT}': {exc.message}") from None
    return images


def _check_media_type(request: Request) -> None:
    media_type = decode.media_type_of(request)
    if media_type and media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type {media_type!r} is not accepted; use {' or '.join(ACCEPTED_MEDIA_TYPES)} (or none)"
        )


async def infer(
    request: Request, serving: ServingApp, model_name: str, model_version: str | None
) -> Response:
    started = time.perf_counter()
    predictor = serving.models.require()
    name = resolve_model(serving, predictor, model_name, model_version)
    _check_media_type(request)
    body = await request.body()
    header_length = request.headers.get(codec.HEADER_LENGTH_HEADER)
    settings = serving.settings
    limits = request_path.decode_limits(settings, predictor)

    def decode_body() -> tuple[InferenceRequest, list[codec.OutputChoice], list[np.ndarray]]:
        parsed = codec.parse_body(body, header_length)
        outputs = codec.requested_outputs(parsed.request, OUTPUT_NAMES)
        batch = codec.image_batch(parsed, settings.max_batch_items, limits)
        return parsed.request, outputs, _images(batch, limits)

    (inference, outputs, images), decode_ms = await request_path.decode_timed(serving.executor, decode_body)
    inferred = await request_path.infer_timed(serving.executor, predictor, images, started, decode_ms)
    metrics.observe_stages(inferred.timings.model_dump())
    metrics.BATCH_SIZE.observe(len(images))

    labels = predictor.labels
    values: dict[str, Any] = {
        PROBABILITIES_OUTPUT: inferred.probabilities,
        LABEL_OUTPUT: [labels[int(index)] for index in np.argmax(inferred.probabilities, axis=1)],
    }
    datatypes = {PROBABILITIES_OUTPUT: codec.FP32, LABEL_OUTPUT: codec.BYTES}
    tensors = [
        codec.OutputTensor(choice.name, datatypes[choice.name], values[choice.name], choice.binary)
        for choice in outputs
    ]
    timings = inferred.timings
    header = {
        "model_name": name,
        "model_version": predictor.model_hash,
        "id": inference.id,
        "parameters": {
            "decode_ms": timings.decode,
            "preprocess_ms": timings.preprocess,
            "inference_ms": timings.inference,
            "total_ms": timings.total,
        },
    }
    encoded = codec.encode_response(header, tensors)
    headers = {} if encoded.json_length is None else {codec.HEADER_LENGTH_HEADER: str(encoded.json_length)}
    return Response(encoded.body, media_type=encoded.media_type, headers=headers)
