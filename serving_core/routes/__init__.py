"""The HTTP routes, on ``APIRouter``s that ``serving_core.app.create_app`` includes: ``predict`` (the predict
endpoints, thin adapters over ``serving_core.request_path``) and ``operations`` (health, readiness, info,
metrics, admin). A route finds the app's ``ServingApp`` through the ``Serving`` dependency.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from serving_core.schemas import ErrorResponse
from serving_core.state import ServingApp


def _serving(request: Request) -> ServingApp:
    return request.app.state.serving


Serving = Annotated[ServingApp, Depends(_serving)]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that can answer these error statuses."""
    return {status: {"model": ErrorResponse} for status in statuses}
