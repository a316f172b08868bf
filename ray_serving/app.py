"""The Serve deployment: serving_core's app (routes, middleware, error handlers, lifespan) around the hosted
predictor (onnx_serving's) is the ASGI ingress of the replica, built in the replica process by ``build_app``.

Serve runs the app's lifespan, so the model loads in the background exactly as in onnx_serving (``/ready`` is
503 until it is warm) and every request goes through ``serving_core.request_path``.
"""

from __future__ import annotations

import logging
import logging.config
import os

from ray import serve
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ray_serving.settings import LOG_TARGET_ENV, WORKDIR_ENV, RayServeSettings
from serving_core.jsonlog import log_config

REQUEST_ID_HEADER = b"x-request-id"


class OneRequestIdHeader:
    """Ray's proxy puts X-Request-ID on every response (the client's id, or one it generates and passes on in
    the request, which serving_core's middleware reuses): the replica's copy of the header is dropped so the
    client sees it once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_without_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                message["headers"] = [(key, val) for key, val in headers if key.lower() != REQUEST_ID_HEADER]
            await send(message)

        await self.app(scope, receive, send_without_id)


def _log_to_the_service(level: str) -> None:
    """A replica is a Ray worker whose own output goes to Ray's log files: serving_core's JSON lines go to the
    stderr of ``python -m ray_serving`` instead, appended, so the service has one log."""
    config = log_config(level)
    target = os.environ.get(LOG_TARGET_ENV)
    if target:
        try:
            with open(target, "a"):  # noqa: PTH123 - /proc/<pid>/fd/2 is not a path to build on
                pass
        except OSError:
            target = None  # a socket, say: the lines stay in Ray's worker log
    if target:
        config["handlers"]["stderr"] = {
            "class": "logging.FileHandler",
            "filename": target,
            "mode": "a",
            "formatter": "json",
        }
    logging.config.dictConfig(config)


def build_app() -> ASGIApp:
    """Called by Serve when the replica starts. The predictor's runtime is imported here, in the replica, not
    in the driver process, which imports this module only to name the deployment."""
    from serving_core.app import create_app

    workdir = os.environ.get(WORKDIR_ENV)
    if workdir:
        os.chdir(workdir)  # relative artifact paths resolve as in the other variants
    predictor, settings = RayServeSettings().hosted()
    _log_to_the_service(settings.log_level)
    return OneRequestIdHeader(create_app(predictor, settings))


@serve.ingress(build_app)
class Classifier:
    """The replica class; Serve hands every HTTP request to the app ``build_app`` returned."""
