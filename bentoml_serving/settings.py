"""bentoml_serving's settings: its name, its port, its number of BentoML workers, and the predictor it hosts.

The hosted predictor (onnx's unless HOSTED_PREDICTOR and HOSTED_SETTINGS say otherwise) is named, not
imported: serving_core.hosting.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from serving_core.hosting import HostingSettings


class BentoServingSettings(HostingSettings):
    variant: str = "bentoml"
    port: int = Field(8012, ge=0, le=65535, validation_alias=AliasChoices("BENTOML_PORT", "PORT", "port"))
    workers: int = Field(
        1,
        ge=1,
        validation_alias=AliasChoices("BENTOML_WORKERS", "WORKERS", "workers"),
        description="BentoML worker processes",
    )
    hosted_predictor: str = Field(
        "onnx_serving.predictor:OnnxPredictor", description="the Predictor it hosts"
    )
    hosted_settings: str = Field(
        "onnx_serving.settings:OnnxServingSettings", description="its settings class"
    )
