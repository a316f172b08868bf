"""ray_serving's settings: its name, its port, its number of Serve replicas, and the predictor it hosts.

The predictor and its settings class are named, as the registry's ``[variant.in_process]`` names them, not
imported: a variant imports no other variant (pyproject.toml's layers). By default they are onnx_serving's, so
the replica serves onnx's artifact with onnx's session options and only the server around it differs.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import AliasChoices, Field

from serving_core.predictor import PredictorFactory
from serving_core.settings import ServingSettings

# Set by ``python -m ray_serving`` for its replicas: where their JSON log lines go, the directory to work in.
LOG_TARGET_ENV = "RAY_SERVING_LOG_TARGET"
WORKDIR_ENV = "RAY_SERVING_WORKDIR"


def named(path: str) -> Any:
    """The object a ``"package.module:Name"`` string names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class RayServeSettings(ServingSettings):
    variant: str = "ray-serve"
    port: int = Field(8011, ge=0, le=65535, validation_alias=AliasChoices("RAY_SERVE_PORT", "PORT", "port"))
    workers: int = Field(
        1,
        ge=1,
        validation_alias=AliasChoices("RAY_SERVE_WORKERS", "WORKERS", "workers"),
        description="Serve replicas (one process each)",
    )
    hosted_predictor: str = Field(
        "onnx_serving.predictor:OnnxPredictor", description="the Predictor the replicas run (module:Class)"
    )
    hosted_settings: str = Field(
        "onnx_serving.settings:OnnxServingSettings", description="its settings class (module:Class)"
    )

    def hosted(self) -> tuple[PredictorFactory, ServingSettings]:
        """The hosted predictor and its settings, read from the environment like the predictor's own
        variant's, with this variant's name, port and workers."""
        settings_class: type[ServingSettings] = named(self.hosted_settings)
        settings = settings_class(variant=self.variant, port=self.port, workers=self.workers)
        return named(self.hosted_predictor), settings
