"""openvino_serving's settings: the shared ones, its name, its port and worker variables, its fused graph."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from artifact_contract import PORTABLE_FILE
from serving_core.settings import ServingSettings

# The portable graph: the optimized one holds ONNX Runtime's own layout operators, which OpenVINO cannot read.
DEFAULT_OPENVINO_MODEL = Path("build/artifacts") / PORTABLE_FILE


class OpenVinoServingSettings(ServingSettings):
    variant: str = "openvino"
    port: int = Field(8005, ge=0, le=65535, validation_alias=AliasChoices("OPENVINO_PORT", "PORT", "port"))
    workers: int = Field(1, ge=1, validation_alias=AliasChoices("OPENVINO_WORKERS", "WORKERS", "workers"))
    openvino_model: Path = DEFAULT_OPENVINO_MODEL
