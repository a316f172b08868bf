"""One JSON error shape, ``{"error": {"code", "message"}}``, for every failure, with no stack traces.

The one exception is the KServe Open Inference Protocol under ``/v2``, whose error object is a bare string,
``{"error": "<message>"}`` (``serving_core.oip``): ``error_response_for`` picks the shape from the path.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("serving_core.errors")


class ServingError(Exception):
    """A failure with a status and a stable machine-readable code; the message is safe to show a client."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class ImageDecodeError(ServingError):
    code = "invalid_image"


class InvalidBase64Error(ServingError):
    code = "invalid_base64"


class InvalidJsonError(ServingError):
    code = "invalid_json"


class InvalidMultipartError(ServingError):
    code = "invalid_multipart"


class PayloadTooLargeError(ServingError):
    status_code = 413
    code = "payload_too_large"


class ImageTooLargeError(ServingError):
    status_code = 413
    code = "image_too_large"


class UnsupportedMediaTypeError(ServingError):
    status_code = 415
    code = "unsupported_media_type"


class SchemaError(ServingError):
    status_code = 422
    code = "validation_error"


class NotReadyError(ServingError):
    status_code = 503
    code = "not_ready"


class AdminDisabledError(ServingError):
    status_code = 403
    code = "admin_disabled"


class UnauthorizedError(ServingError):
    status_code = 401
    code = "unauthorized"


class ModelLoadError(ServingError):
    """Artifacts that cannot be served; on reload the previous model keeps serving."""

    status_code = 422
    code = "reload_failed"


# Absolute or relative, with at least two separators: "/srv/a/model.onnx", "build/artifacts/model.onnx".
_FILE_PATH = re.compile(r"[\w.\-+@~]*(?:/[\w.\-+@]+){2,}")


def without_paths(message: str) -> str:
    """Replace file-system paths by their last component so error bodies never reveal the layout."""
    return _FILE_PATH.sub(lambda match: match.group(0).rsplit("/", 1)[-1], message)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status_code, headers=headers)


OIP_PATH_PREFIX = "/v2"


def is_oip_path(path: str) -> bool:
    return path == OIP_PATH_PREFIX or path.startswith(OIP_PATH_PREFIX + "/")


def error_response_for(
    path: str, status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error in the shape of the protocol that ``path`` belongs to."""
    if is_oip_path(path):
        return JSONResponse({"error": message}, status_code=status_code, headers=headers)
    return error_response(status_code, code, message, headers)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "request does not match the schema"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, exc: ServingError) -> JSONResponse:
        return error_response_for(request.scope["path"], exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        return error_response_for(request.scope["path"], exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response_for(request.scope["path"], 422, "validation_error", _describe_validation(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = "internal server error (details are in the service log)"
        return error_response_for(request.scope["path"], 500, "internal_error", message)
