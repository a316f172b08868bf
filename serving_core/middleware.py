"""One pure-ASGI middleware around every request: request id, body and in-flight limits, metrics, access log.

Pure ASGI (not ``BaseHTTPMiddleware``) so the overhead every variant pays is as small as it can be.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving_core import metrics
from serving_core.errors import PayloadTooLargeError, error_response_for
from serving_core.jsonlog import request_id_var

log = logging.getLogger("serving_core.access")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# The inference routes: the native ones and their /infer aliases, and the OIP's /v2/models/.../infer.
LIMITED_PREFIXES = ("/predict", "/infer")
OIP_MODELS_PREFIX = "/v2/models/"
OIP_INFER_SUFFIX = "/infer"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def is_admission_controlled(path: str) -> bool:
    """The paths that count against MAX_IN_FLIGHT: every route that runs an inference, none that probes."""
    return path.startswith(LIMITED_PREFIXES) or (
        path.startswith(OIP_MODELS_PREFIX) and path.endswith(OIP_INFER_SUFFIX)
    )


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class ServingMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_in_flight: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        limited = is_admission_controlled(scope["path"])
        try:
            if limited and self.max_in_flight and self.in_flight >= self.max_in_flight:
                metrics.REJECTED.labels("overloaded").inc()
                await self._reject(
                    scope,
                    receive,
                    send_with_id,
                    503,
                    "overloaded",
                    f"more than {self.max_in_flight} requests in flight on this worker; retry shortly",
                    {"Retry-After": "1"},
                )
                return
            declared = _header(scope, b"content-length")
            if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
                metrics.REJECTED.labels("body_too_large").inc()
                await self._reject(
                    scope,
                    receive,
                    send_with_id,
                    413,
                    PayloadTooLargeError.code,
                    _too_large_message(self.max_body_bytes),
                )
                return
            self.in_flight += 1
            metrics.IN_FLIGHT.inc()
            try:
                await self.app(scope, self._limited_receive(receive), send_with_id)
            finally:
                self.in_flight -= 1
                metrics.IN_FLIGHT.dec()
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(scope)
            metrics.REQUESTS.labels(route, scope["method"], str(status["code"])).inc()
            metrics.REQUEST_LATENCY.labels(route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "duration_ms": round(elapsed * 1000.0, 3),
                },
            )
            request_id_var.reset(token)

    def _limited_receive(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(_too_large_message(limit))
            return message

        return counting_receive

    @staticmethod
    async def _reject(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        message: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        response = error_response_for(scope["path"], status, code, message, headers)
        await response(scope, receive, send)


def _too_large_message(limit: int) -> str:
    return f"request body exceeds the limit of {limit} bytes (MAX_BODY_BYTES)"
