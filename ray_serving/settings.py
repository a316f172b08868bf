"""ray_serving's settings: its name, its port, its number of Serve replicas, and the predictor it hosts.

The hosted predictor (onnx's unless HOSTED_PREDICTOR and HOSTED_SETTINGS say otherwise) is named, not
imported: serving_core.hosting.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from serving_core.hosting import HostingSettings

# Set by ``python -m ray_serving`` for its replicas: where their JSON log lines go, the directory to work in.
LOG_TARGET_ENV = "RAY_SERVING_LOG_TARGET"
WORKDIR_ENV = "RAY_SERVING_WORKDIR"


class RayServeSettings(HostingSettings):
    variant: str = "ray-serve"
    port: int = Field(8011, ge=0, le=65535, validation_alias=AliasChoices("RAY_SERVE_PORT", "PORT", "port"))
    workers: int = Field(
        1,
        ge=1,
        validation_alias=AliasChoices("RAY_SERVE_WORKERS", "WORKERS", "workers"),
        description="Serve replicas (one process each)",
    )
    hosted_predictor: str = Field(
        "onnx_serving.predictor:OnnxPredictor", description="the Predictor it hosts"
    )
    hosted_settings: str = Field(
        "onnx_serving.settings:OnnxServingSettings", description="its settings class"
    )
