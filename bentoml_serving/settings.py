"""bentoml_serving's settings: its name, its port, its number of BentoML workers, and the predictor it hosts.

The hosted predictor (onnx's by default) is named, not imported: serving_core.hosting.
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
