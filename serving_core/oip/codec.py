"""Inference request bodies -> numpy, and outputs -> response bodies, the binary tensor data extension
included; every malformed request is a 4xx ``ServingError`` that says what is wrong.

A request body is the JSON inference request or, with the binary extension, that JSON (its length in the
``Inference-Header-Content-Length`` header) followed by the bytes of each input that declares a
``binary_data_size`` parameter, in input order. Binary tensors are little-endian and row-major; a BYTES
element is a 4-byte little-endian length followed by that many bytes.

The model's one input, ``image``, is either UINT8 ``[N, H, W, 3]`` RGB pixels (JSON ``data`` flat or nested,
row-major) or BYTES ``[N]`` encoded JPEG/PNG/WebP files (JSON: base64 strings, as the native contract's).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from serving_core import decode
from serving_core.errors import InvalidBase64Error
from serving_core.oip.errors import BatchTooLargeError, InvalidInferenceRequestError, InvalidTensorError
from serving_core.oip.schemas import InferenceRequest, Parameters, RequestInput

HEADER_LENGTH_HEADER = "Inference-Header-Content-Length"
BINARY_EXTENSION = "binary_tensor_data"
BINARY_DATA_SIZE = "binary_data_size"
BINARY_DATA = "binary_data"
BINARY_DATA_OUTPUT = "binary_data_output"
CLASSIFICATION = "classification"

IMAGE_INPUT = "image"  # the fused graph's input name (artifact_contract.IMAGE_INPUT, not in the torch image)
UINT8 = "UINT8"
BYTES = "BYTES"
FP32 = "FP32"
CHANNELS = 3
JSON_MEDIA_TYPE = "application/json"
BINARY_MEDIA_TYPE = "application/octet-stream"

_LENGTH_PREFIX = struct.Struct("<I")

ImageBatch = np.ndarray | list[bytes]
"""UINT8 pixels ``(N, H, W, 3)``, or N encoded image files."""


@dataclass(frozen=True)
class InferenceBody:
    request: InferenceRequest
    binary_inputs: tuple[memoryview | None, ...]
    """Per input, in order: its binary data, or None when its data is in the JSON."""


@dataclass(frozen=True)
class OutputChoice:
    name: str
    binary: bool


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    values: np.ndarray | list[str]
    """FP32: an array of any shape; BYTES: the strings of a ``[len(values)]`` tensor."""
    binary: bool


@dataclass(frozen=True)
class EncodedResponse:
    body: bytes
    json_length: int | None
    """The ``Inference-Header-Content-Length`` to send; None: the body is JSON only."""

    @property
    def media_type(self) -> str:
        return JSON_MEDIA_TYPE if self.json_length is None else BINARY_MEDIA_TYPE


# --- request bodies ---------------------------------------------------------------------------------------


def json_header_length(value: str | None, body_length: int) -> int | None:
    """The ``Inference-Header-Content-Length`` header: None when absent (the body is JSON only)."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidInferenceRequestError(
            f"{HEADER_LENGTH_HEADER} must be a decimal byte count, got {value!r}"
        )
    length = int(text)
    if not 1 <= length <= body_length:
        raise InvalidInferenceRequestError(
            f"{HEADER_LENGTH_HEADER} is {length}, but the JSON header must be 1 to {body_length} bytes "
            f"(the body's length)"
        )
    return length


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}" for error in exc.errors()
    )


def parse_request(header: bytes) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidInferenceRequestError("the inference request is not valid JSON") from None
        raise InvalidInferenceRequestError(f"not an inference request: {_describe(exc)}") from None


def _binary_data_size(tensor: RequestInput) -> int | None:
    size = (tensor.parameters or {}).get(BINARY_DATA_SIZE)
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidTensorError(
            f"input '{tensor.name}': {BINARY_DATA_SIZE} must be a non-negative integer, got {size!r}"
        )
    return size


def parse_body(body: bytes, header_length: str | None) -> InferenceBody:
    """The request and each input's binary data; every byte of the body must belong somewhere."""
    length = json_header_length(header_length, len(body))
    view = memoryview(body)
    request = parse_request(body if length is None else bytes(view[:length]))
    binary = view[:0] if length is None else view[length:]
    segments: list[memoryview | None] = []
    offset = 0
    for tensor in request.inputs:
        size = _binary_data_size(tensor)
        if size is None:
            if tensor.data is None:
                raise InvalidTensorError(
                    f"input '{tensor.name}' has neither data nor parameters.{BINARY_DATA_SIZE}"
                )
            segments.append(None)
            continue
        if tensor.data is not None:
            raise InvalidTensorError(f"input '{tensor.name}' has both data and parameters.{BINARY_DATA_SIZE}")
        if length is None:
            raise InvalidInferenceRequestError(
                f"input '{tensor.name}' is binary ({BINARY_DATA_SIZE}) but the request has no "
                f"{HEADER_LENGTH_HEADER} header saying where its JSON ends"
            )
        if offset + size > len(binary):
            raise InvalidTensorError(
                f"input '{tensor.name}' declares {size} bytes of binary data; only {len(binary) - offset} "
                "remain after the JSON header"
            )
        segments.append(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise InvalidInferenceRequestError(
            f"{len(binary) - offset} bytes after the JSON header belong to no input's {BINARY_DATA_SIZE}"
        )
    return InferenceBody(request, tuple(segments))


# --- the image input --------------------------------------------------------------------------------------


def _check_batch(count: int, max_batch_items: int) -> None:
    if count > max_batch_items:
        raise BatchTooLargeError(
            f"input '{IMAGE_INPUT}' holds {count} images; at most {max_batch_items} (MAX_BATCH_ITEMS)"
        )


def _uint8_from_json(data: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidTensorError(
            f"UINT8 input '{IMAGE_INPUT}': data is ragged or mixes types; give integers 0..255, "
            "flat or nested row-major"
        ) from None
    if array.dtype.kind not in "iu":
        raise InvalidTensorError(
            f"UINT8 input '{IMAGE_INPUT}': data must be integers 0..255, got elements of type {array.dtype}"
        )
    if array.ndim == 1 and array.size != math.prod(shape):
        raise InvalidTensorError(
            f"UINT8 input '{IMAGE_INPUT}': {array.size} elements of data for shape {list(shape)}, "
            f"which holds {math.prod(shape)}"
        )
    if array.ndim != 1 and array.shape != shape:
        raise InvalidTensorError(
            f"UINT8 input '{IMAGE_INPUT}': nested data of shape {list(array.shape)} for declared "
            f"shape {list(shape)}"
        )
    if array.min() < 0 or array.max() > 255:
        raise InvalidTensorError(f"UINT8 input '{IMAGE_INPUT}': data must be integers 0..255")
    return array.astype(np.uint8, copy=False).reshape(shape)


def _pixels(
    tensor: RequestInput, binary: memoryview | None, max_batch_items: int, limits: decode.DecodeLimits
) -> np.ndarray:
    if len(tensor.shape) != 4 or tensor.shape[3] != CHANNELS:
        raise InvalidTensorError(
            f"UINT8 input '{IMAGE_INPUT}' must have shape [N, H, W, 3] (RGB), got {tensor.shape}"
        )
    count, height, width, _ = tensor.shape
    if min(count, height, width) < 1:
        raise InvalidTensorError(f"UINT8 input '{IMAGE_INPUT}' has an empty dimension: {tensor.shape}")
    _check_batch(count, max_batch_items)
    decode.check_image_size(width, height, limits)
    shape = (count, height, width, CHANNELS)
    if binary is None:
        return _uint8_from_json(tensor.data or [], shape)
    if len(binary) != math.prod(shape):
        raise InvalidTensorError(
            f"UINT8 input '{IMAGE_INPUT}': {len(binary)} bytes of binary data for shape {list(shape)}, "
            f"which needs {math.prod(shape)}"
        )
    return np.frombuffer(binary, dtype=np.uint8).reshape(shape)


def _length_prefixed(binary: memoryview, count: int) -> list[bytes]:
    elements: list[bytes] = []
    offset = 0
    for index in range(count):
        if offset + _LENGTH_PREFIX.size > len(binary):
            raise InvalidTensorError(
                f"BYTES input '{IMAGE_INPUT}': the binary data ends before element {index} of {count} (each "
                "element is a 4-byte little-endian length, then that many bytes)"
            )
        (length,) = _LENGTH_PREFIX.unpack_from(binary, offset)
        offset += _LENGTH_PREFIX.size
        if offset + length > len(binary):
            raise InvalidTensorError(
                f"BYTES input '{IMAGE_INPUT}': element {index} declares {length} bytes; "
                f"{len(binary) - offset} remain"
            )
        elements.append(bytes(binary[offset : offset + length]))
        offset += length
    if offset != len(binary):
        raise InvalidTensorError(
            f"BYTES input '{IMAGE_INPUT}': {len(binary) - offset} bytes of binary data after the {count} "
            "elements of its shape"
        )
    return elements


def _from_base64(data: list[Any], count: int) -> list[bytes]:
    if len(data) != count or not all(isinstance(item, str) for item in data):
        raise InvalidTensorError(
            f"BYTES input '{IMAGE_INPUT}': data must be {count} base64 strings (one per image, as its shape "
            f"[{count}] says)"
        )
    encoded: list[bytes] = []
    for index, text in enumerate(data):
        try:
            encoded.append(decode.decode_base64(text))
        except InvalidBase64Error as exc:
            raise InvalidBase64Error(
                f"element {index} of BYTES input '{IMAGE_INPUT}': {exc.message}"
            ) from None
    return encoded


def _encoded_images(tensor: RequestInput, binary: memoryview | None, max_batch_items: int) -> list[bytes]:
    if len(tensor.shape) != 1 or tensor.shape[0] < 1:
        raise InvalidTensorError(
            f"BYTES input '{IMAGE_INPUT}' must have shape [N] (N encoded images), got {tensor.shape}"
        )
    (count,) = tensor.shape
    _check_batch(count, max_batch_items)
    if binary is None:
        return _from_base64(tensor.data or [], count)
    return _length_prefixed(binary, count)


def image_batch(body: InferenceBody, max_batch_items: int, limits: decode.DecodeLimits) -> ImageBatch:
    """The model's one input: pixels checked against the image limits, or the encoded files to decode."""
    inputs = body.request.inputs
    if len(inputs) != 1 or inputs[0].name != IMAGE_INPUT:
        names = [tensor.name for tensor in inputs]
        raise InvalidTensorError(f"the model takes one input, '{IMAGE_INPUT}'; the request has {names}")
    tensor, binary = inputs[0], body.binary_inputs[0]
    if tensor.datatype == UINT8:
        return _pixels(tensor, binary, max_batch_items, limits)
    if tensor.datatype == BYTES:
        return _encoded_images(tensor, binary, max_batch_items)
    raise InvalidTensorError(
        f"input '{IMAGE_INPUT}' has datatype {tensor.datatype!r}; it takes UINT8 [N, H, W, 3] pixels or "
        "BYTES [N] encoded images"
    )


# --- outputs ----------------------------------------------------------------------------------------------


def _flag(parameters: Parameters | None, name: str, default: bool, owner: str) -> bool:
    value = (parameters or {}).get(name, default)
    if not isinstance(value, bool):
        raise InvalidTensorError(f"{owner}: parameter {name} must be true or false, got {value!r}")
    return value


def requested_outputs(request: InferenceRequest, available: Sequence[str]) -> list[OutputChoice]:
    """The outputs to send, in the order asked for (all of them when none is named), and whether each is
    binary (its ``binary_data``, else the request's ``binary_data_output``)."""
    every_binary = _flag(request.parameters, BINARY_DATA_OUTPUT, False, "the request")
    if request.outputs is None:
        return [OutputChoice(name, every_binary) for name in available]
    choices: list[OutputChoice] = []
    for output in request.outputs:
        if output.name not in available:
            raise InvalidTensorError(
                f"unknown output '{output.name}': the model's outputs are {list(available)}"
            )
        if any(choice.name == output.name for choice in choices):
            raise InvalidTensorError(f"output '{output.name}' is requested twice")
        if CLASSIFICATION in (output.parameters or {}):
            raise InvalidTensorError(
                f"output '{output.name}': the classification extension is not supported; the 'label' "
                "output gives the top-1 label and 'probabilities' every class"
            )
        binary = _flag(output.parameters, BINARY_DATA, every_binary, f"output '{output.name}'")
        choices.append(OutputChoice(output.name, binary))
    return choices


def _length_prefix_all(values: Sequence[str]) -> bytes:
    parts = []
    for value in values:
        encoded = value.encode()
        parts += [_LENGTH_PREFIX.pack(len(encoded)), encoded]
    return b"".join(parts)


def _output_entry(tensor: OutputTensor) -> tuple[dict[str, Any], bytes | None]:
    """The output's JSON object and, when binary, its bytes."""
    if tensor.datatype == FP32:
        array = np.ascontiguousarray(tensor.values, dtype="<f4")
        shape = list(array.shape)
        raw = array.tobytes() if tensor.binary else None
        data: list[Any] | None = None if tensor.binary else array.ravel().tolist()
    elif tensor.datatype == BYTES:
        strings = list(tensor.values)
        shape = [len(strings)]
        raw = _length_prefix_all(strings) if tensor.binary else None
        data = None if tensor.binary else strings
    else:
        raise ValueError(f"no encoding for output datatype {tensor.datatype}")
    entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": shape}
    if raw is None:
        entry["data"] = data
    else:
        entry["parameters"] = {BINARY_DATA_SIZE: len(raw)}
    return entry, raw


def encode_response(header: dict[str, Any], outputs: Sequence[OutputTensor]) -> EncodedResponse:
    """``header`` (model_name, model_version, id, parameters; None values left out) plus the outputs: all
    JSON, or the JSON followed by the binary outputs' bytes in output order."""
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for tensor in outputs:
        entry, raw = _output_entry(tensor)
        entries.append(entry)
        if raw is not None:
            blobs.append(raw)
    document = {key: value for key, value in header.items() if value is not None}
    document["outputs"] = entries
    text = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return EncodedResponse(text, None)
    return EncodedResponse(text + b"".join(blobs), len(text))
