"""onnx_serving's settings: the shared ones, its name, its port and worker variables, its fused graph."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from artifact_contract import OPTIMIZED_FILE
from serving_core.settings import ServingSettings

DEFAULT_ONNX_MODEL = Path("build/artifacts") / OPTIMIZED_FILE


class OnnxServingSettings(ServingSettings):
    variant: str = "onnx"
    port: int = Field(8002, ge=0, le=65535, validation_alias=AliasChoices("ONNX_PORT", "PORT", "port"))
    workers: int = Field(1, ge=1, validation_alias=AliasChoices("ONNX_WORKERS", "WORKERS", "workers"))
    onnx_model: Path = DEFAULT_ONNX_MODEL
