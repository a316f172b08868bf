"""``create_app(predictor_factory, settings)``: the FastAPI app every Python variant serves.

The app is the routes (``serving_core.routes``; the request path itself is ``serving_core.request_path``;
the KServe Open Inference Protocol v2 under ``/v2``, ``serving_core.oip``),
the shared state they read (``serving_core.state.ServingApp``), the error handlers, the middleware (body
limit, in-flight limit, access log, request metrics) and the background tasks of the lifespan: the first
model load, reloads requested through another worker, and process metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from serving_core import metrics
from serving_core.errors import install_error_handlers
from serving_core.middleware import ServingMiddleware
from serving_core.oip.router import oip_router
from serving_core.predictor import PredictorFactory
from serving_core.routes import operations
from serving_core.routes.predict import predict_router
from serving_core.settings import ServingSettings
from serving_core.state import ServingApp

PROCESS_METRICS_PERIOD_SECONDS = 2.0


async def _refresh_process_metrics() -> None:
    while True:
        metrics.update_process_metrics()
        await asyncio.sleep(PROCESS_METRICS_PERIOD_SECONDS)


def create_app(predictor_factory: PredictorFactory, settings: ServingSettings) -> FastAPI:
    serving = ServingApp(predictor_factory, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        metrics.set_ready(False)
        if serving.models.replaces_a_worker():
            # The shared socket would hand this worker its share of new connections while it loads, and it
            # could only answer them 503: it loads first (uvicorn accepts only after the startup), and the
            # other workers serve meanwhile.
            await serving.models.initial_load()
        background = [
            asyncio.create_task(_refresh_process_metrics()),
            asyncio.create_task(serving.models.follow_reloads()),
        ]
        if serving.models.predictor is None and serving.models.load_error is None:
            background.append(asyncio.create_task(serving.models.initial_load()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            metrics.mark_worker_exited()

    app = FastAPI(
        title=f"serving-lab {settings.variant}",
        description="One image-classification predict API, the same on every variant.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.serving = serving
    install_error_handlers(app)
    app.add_middleware(
        ServingMiddleware, max_body_bytes=settings.max_body_bytes, max_in_flight=settings.max_in_flight
    )
    app.include_router(predict_router(settings.max_batch_items))
    app.include_router(oip_router())
    app.include_router(operations.router)
    return app
