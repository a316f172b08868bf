"""The BentoML service ``Classifier``: BentoML's API for the benchmark's request, serving_core for the rest.

``ContractFront``, a middleware of the service (inside BentoML's own), routes each request:

- ``POST /predict`` with a JSON body of declared, non-zero length goes to BentoML's route for the
  ``predict`` API: BentoML reads the body and validates it into ``PredictInput`` (serving_core's
  ``PredictRequest`` schema), calls ``Classifier.predict`` and serialises the ``PredictResponse`` it returns.
  The API decodes and infers with serving_core's request-path functions and the app's executor; BentoML's
  validation errors are answered in the contract's error shape and status, as serving_core words them.
- BentoML's own probes (``/livez``, ``/readyz``, ``/healthz``) and schemas go to BentoML.
- Everything else (the other body forms, batch, ``/``, ``/health``, ``/ready``, ``/info``, ``/metrics``,
  admin, OpenAPI, 404s) goes to serving_core's routes, mounted in the service so that BentoML runs their
  lifespan (the model load, exactly as in onnx_serving).

serving_core's ServingMiddleware wraps both paths once: request id, body and in-flight limits, access log,
request metrics.
"""

from __future__ import annotations

import json
import logging.config
import time
from typing import Annotated, Any

import bentoml
from bentoml import IODescriptor
from pydantic import Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bentoml_serving.settings import BentoServingSettings
from serving_core import decode, metrics, request_path
from serving_core.app import create_app
from serving_core.errors import InvalidJsonError, SchemaError, ServingError, error_response
from serving_core.jsonlog import log_config
from serving_core.middleware import ServingMiddleware
from serving_core.schemas import PredictRequest, PredictResponse, Timings
from serving_core.state import ServingApp

# The hosted predictor (onnx_serving's) and the settings every route reads (this variant's name, port,
# workers).
predictor_factory, settings = BentoServingSettings().hosted()
logging.config.dictConfig(log_config(settings.log_level))
contract = create_app(predictor_factory, settings)
# The service puts ServingMiddleware around both paths, so serving_core's routes do without their own copy.
contract.user_middleware = [m for m in contract.user_middleware if m.cls is not ServingMiddleware]
serving: ServingApp = contract.state.serving

PREDICT_PATH = "/predict"
BENTOML_PATHS = {"/livez", "/readyz", "/healthz", "/schema.json", "/docs.json"}
QUERY_TOP_K = TypeAdapter(Annotated[int, Field(ge=1)])


class PredictInput(IODescriptor, PredictRequest):
    """BentoML's input model for ``predict``: serving_core's JSON body schema (camelCase keys accepted,
    unknown keys refused)."""


class PredictOutput(IODescriptor, PredictResponse):
    """BentoML's output model for ``predict``: serving_core's response schema (an error answer is a Response
    of its own, which BentoML passes through)."""


def _header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def _for_the_api(scope: Scope) -> bool:
    """A JSON predict request BentoML's API can take: BentoML reads an empty body as ``{}`` (the contract
    calls it invalid JSON), and only serving_core's body reader enforces MAX_BODY_BYTES on an undeclared
    length."""
    media_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    length = _header(scope, b"content-length")
    return media_type == "application/json" and length is not None and length.isdigit() and int(length) > 0


def _contract_error(status: int, body: Any) -> Response:
    """BentoML's own error answers, in the contract's shape: its pydantic ValidationError (400 with the
    error list in ``detail``) as serving_core's JSON parsing words it (400 invalid JSON, 422 otherwise),
    anything else with its status."""
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        errors = body["detail"]
        if any(error.get("type") == "json_invalid" for error in errors):
            problem: ServingError = InvalidJsonError("the body is not valid JSON")
        else:
            problem = SchemaError(
                "; ".join(
                    f"{'.'.join(str(part) for part in error.get('loc', ())) or 'body'}: {error.get('msg')}"
                    for error in errors
                )
            )
        return error_response(problem.status_code, problem.code, problem.message)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    message = str(body.get("error") if isinstance(body, dict) else body) or "request failed"
    code = "internal_error" if status >= 500 else "http_error"
    return error_response(status, code, message)


class ContractFront:
    """Routes a request to BentoML (its API, its probes) or to serving_core's routes (see the module
    docstring); drops the Server header BentoML adds to API answers; puts BentoML's error answers into the
    contract's shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_anonymous(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
            await send(message)

        path = scope["path"]
        if path == PREDICT_PATH and scope["method"] == "POST" and _for_the_api(scope):
            await self.app(scope, receive, self._contract_errors(scope, receive, send_anonymous))
        elif path in BENTOML_PATHS:
            await self.app(scope, receive, send_anonymous)
        else:
            await contract(scope, receive, send_anonymous)

    @staticmethod
    def _contract_errors(scope: Scope, receive: Receive, send: Send) -> Send:
        """Passes answers through, except BentoML's own errors (not yet in the contract's shape), which are
        held until their body is complete and then re-sent translated."""
        held: dict[str, Any] = {}

        async def translating_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held.update(start=message, body=b"")
                return
            if "start" not in held:
                await send(message)
                return
            held["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            try:
                body = json.loads(held["body"])
            except ValueError:
                body = held["body"].decode(errors="replace")
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                await send(held["start"])  # one of ours already (``Classifier.predict``)
                await send({"type": "http.response.body", "body": held["body"]})
                return
            await _contract_error(held["start"]["status"], body)(scope, receive, send)

        return translating_send


def _decode_timed(data: bytes, limits: decode.DecodeLimits) -> tuple[Any, float]:
    started = time.perf_counter()
    return decode.decode_image(data, limits), round((time.perf_counter() - started) * 1000.0, 3)


def _query_top_k(request: Request) -> int | None:
    raw = request.query_params.get("top_k")
    if raw is None:
        return None
    try:
        return QUERY_TOP_K.validate_python(raw)
    except ValidationError as exc:
        raise SchemaError(f"query.top_k: {exc.errors()[0]['msg']}") from None


async def _predict(image: str, top_k: int | None, request: Request) -> PredictResponse:
    """``serving_core.request_path.predict_one`` from the point where BentoML has parsed the body: the same
    decode, limits, inference call and response."""
    started = time.perf_counter()
    predictor = serving.models.require()
    data = decode.decode_base64(image)
    limits = request_path.decode_limits(settings, predictor)
    pixels, decode_ms = await serving.executor.decode(lambda: _decode_timed(data, limits))
    wanted = request_path.resolve_top_k(settings, top_k or _query_top_k(request), predictor)
    output = await serving.executor.infer(predictor, [pixels])
    timings = Timings(
        decode=decode_ms,
        preprocess=round(output.preprocess_ms, 3),
        inference=round(output.inference_ms, 3),
        total=round((time.perf_counter() - started) * 1000.0, 3),
    )
    return request_path.prediction(output.probabilities[0], predictor, settings.variant, wanted, timings)


@bentoml.service(
    name="classifier",
    workers=settings.workers,
    # The service's access log is serving_core's JSON line, as in every variant; BentoML's would be a second.
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(contract, path="/")
class Classifier:
    def __is_ready__(self) -> bool:
        """BentoML's /readyz: 503 until the model is loaded and warm, like /ready."""
        return serving.models.predictor is not None

    @bentoml.api(route=PREDICT_PATH, input_spec=PredictInput, output_spec=PredictOutput)
    async def predict(
        self, image: str, top_k: int | None, ctx: bentoml.Context
    ) -> PredictResponse | Response:
        try:
            body = await _predict(image, top_k, ctx.request)
        except ServingError as exc:
            # With a context parameter BentoML sets the answer's status from the context.
            ctx.response.status_code = exc.status_code
            return error_response(exc.status_code, exc.code, exc.message, exc.headers)
        metrics.observe_stages(body.timings_ms.model_dump())
        metrics.BATCH_SIZE.observe(1)
        return body


Classifier.add_asgi_middleware(
    ServingMiddleware, max_body_bytes=settings.max_body_bytes, max_in_flight=settings.max_in_flight
)
Classifier.add_asgi_middleware(ContractFront)
