"""What the routes of one app share: settings, the model holder, the executor and its limits, the admin
check.
"""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime

from serving_core.errors import AdminDisabledError, UnauthorizedError
from serving_core.model_holder import ModelHolder
from serving_core.predictor import PredictorFactory
from serving_core.request_path import ThreadExecutor
from serving_core.settings import ServingSettings


class ServingApp:
    def __init__(self, factory: PredictorFactory, settings: ServingSettings) -> None:
        self.settings = settings
        self.models = ModelHolder(factory, settings)
        self.started_at = datetime.now(UTC)
        self.started_monotonic = time.monotonic()
        self.executor = ThreadExecutor(settings.decode_concurrency, settings.inference_concurrency)

    def check_admin(self, authorization: str | None) -> None:
        token = self.settings.admin_token
        if token is None or not token.get_secret_value():
            raise AdminDisabledError("admin endpoints are disabled: no ADMIN_TOKEN is configured")
        scheme, _, presented = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise UnauthorizedError(
                "a valid 'Authorization: Bearer <ADMIN_TOKEN>' header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
