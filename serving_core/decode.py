"""Request bodies -> decoded images: every accepted body form, every input limit, each failure a clear 4xx.

Accepted forms: JSON ``{"image": "<base64>"}`` (batch: ``{"images": [...]}``), raw bytes with ``Content-Type:
image/jpeg|png|webp``, and ``multipart/form-data`` with the field ``file`` (batch: ``files``). The output of
decoding is always a uint8 ``(H, W, 3)`` RGB numpy array, the input every predictor takes.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from fastapi import Request
from PIL import Image
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from serving_core import jpeg
from serving_core.errors import (
    ImageDecodeError,
    ImageTooLargeError,
    InvalidBase64Error,
    InvalidJsonError,
    InvalidMultipartError,
    SchemaError,
    ServingError,
    UnsupportedMediaTypeError,
)
from serving_core.schemas import BatchPredictRequest, PredictRequest

ModelT = TypeVar("ModelT", bound=BaseModel)

RAW_IMAGE_TYPES = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
SINGLE_FILE_FIELD = "file"
BATCH_FILE_FIELD = "files"

# Our own pixel limit (checked from the header, before any pixel is decoded) replaces Pillow's global one.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class DecodeLimits:
    max_image_pixels: int
    max_aspect_ratio: float
    draft_min_side: int | None = None
    """When set, JPEGs are decoded DCT-scaled down to the smallest size whose shorter side is still >= this.
    """


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class SingleRequest:
    image: EncodedImage
    top_k: int | None


@dataclass(frozen=True)
class BatchRequest:
    images: list[EncodedImage | InvalidBase64Error]
    top_k: int | None


def media_type_of(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def decode_base64(text: str) -> bytes:
    """Standard base64, tolerating a ``data:image/...;base64,`` prefix and line breaks."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64Error(f"the image field is not valid base64: {exc}") from None


def _parse_json(body: bytes, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidJsonError("the body is not valid JSON") from None
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SchemaError(details) from None


async def _form_files(request: Request, field: str, max_files: int, max_bytes: int) -> list[EncodedImage]:
    try:
        form = await request.form(max_files=max_files, max_fields=16, max_part_size=max_bytes)
    except ServingError:
        raise
    except Exception as exc:  # starlette raises several types for malformed multipart bodies
        raise InvalidMultipartError(f"malformed multipart body: {getattr(exc, 'detail', exc)}") from None
    uploads = [item for item in form.getlist(field) if isinstance(item, UploadFile)]
    if not uploads:
        raise SchemaError(f"multipart body has no file field named '{field}'")
    files = [EncodedImage(await upload.read(), upload.filename) for upload in uploads]
    await form.close()
    return files


def _unsupported(media_type: str) -> UnsupportedMediaTypeError:
    accepted = ", ".join(
        ["application/json", "multipart/form-data", *sorted(set(RAW_IMAGE_TYPES) - {"image/jpg"})]
    )
    return UnsupportedMediaTypeError(
        f"content type {media_type or '(none)'!r} is not accepted; use one of {accepted}"
    )


async def read_single(request: Request, max_bytes: int, top_k: int | None) -> SingleRequest:
    """``top_k`` comes from the query string; a ``top_k`` in a JSON body wins over it."""
    media_type = media_type_of(request)
    if media_type == "application/json":
        parsed = _parse_json(await request.body(), PredictRequest)
        return SingleRequest(EncodedImage(decode_base64(parsed.image)), parsed.top_k or top_k)
    if media_type in RAW_IMAGE_TYPES:
        return SingleRequest(EncodedImage(await request.body()), top_k)
    if media_type == "multipart/form-data":
        files = await _form_files(request, SINGLE_FILE_FIELD, 1, max_bytes)
        return SingleRequest(files[0], top_k)
    raise _unsupported(media_type)


async def read_batch(request: Request, max_bytes: int, max_items: int, top_k: int | None) -> BatchRequest:
    media_type = media_type_of(request)
    if media_type == "application/json":
        parsed = _parse_json(await request.body(), BatchPredictRequest)
        _check_batch_size(len(parsed.images), max_items)
        images: list[EncodedImage | InvalidBase64Error] = []
        for text in parsed.images:
            try:
                images.append(EncodedImage(decode_base64(text)))
            except InvalidBase64Error as exc:
                images.append(exc)
        return BatchRequest(images, parsed.top_k or top_k)
    if media_type == "multipart/form-data":
        files = await _form_files(request, BATCH_FILE_FIELD, max_items + 1, max_bytes)
        _check_batch_size(len(files), max_items)
        return BatchRequest(list(files), top_k)
    raise _unsupported(media_type)


def _check_batch_size(count: int, max_items: int) -> None:
    if count > max_items:
        raise SchemaError(f"a batch holds at most {max_items} images (MAX_BATCH_ITEMS), got {count}")


def check_image_size(width: int, height: int, limits: DecodeLimits) -> None:
    """The pixel and aspect-ratio limits of one image, from its dimensions alone (header or tensor shape)."""
    if width * height > limits.max_image_pixels:
        raise ImageTooLargeError(
            f"image of {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{limits.max_image_pixels} (MAX_IMAGE_PIXELS)"
        )
    if width < 1 or height < 1 or max(width, height) / min(width, height) > limits.max_aspect_ratio:
        raise ImageDecodeError(
            f"image of {width}x{height} has an aspect ratio above "
            f"{limits.max_aspect_ratio:g} (MAX_ASPECT_RATIO)"
        )


def decode_image(data: bytes, limits: DecodeLimits) -> np.ndarray:
    """Encoded JPEG/PNG/WebP bytes -> uint8 (H, W, 3) RGB; the pixel limit is checked from the header.

    JPEGs go through ``serving_core.jpeg`` (libjpeg-turbo: Pillow's pixels, about twice as fast); the rest,
    and any JPEG that path declines, through Pillow."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image refused: {exc}") from None
    except Exception:
        raise ImageDecodeError("the bytes are not a JPEG, PNG or WebP image Pillow can read") from None
    with image:
        width, height = image.size
        check_image_size(width, height, limits)
        is_jpeg = image.format == "JPEG"
        min_side = limits.draft_min_side or 0
        scale = jpeg.draft_scale(width, height, min_side) if is_jpeg else 1
        if is_jpeg and image.mode in jpeg.FAST_MODES:
            pixels = jpeg.decode_rgb(data, width, height, scale)
            if pixels is not None:
                return pixels
        if scale > 1:
            # Pillow's draft picks the same 1/scale reduction from this request (see jpeg.draft_scale).
            image.draft("RGB", (min_side, min_side))
        try:
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
        except Exception:
            raise ImageDecodeError(f"the {image.format} image is truncated or corrupt") from None
