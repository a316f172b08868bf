"""torch_serving's settings: the shared ones, its name, its port and worker variables, its checkpoint."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from serving_core.settings import ServingSettings

DEFAULT_CHECKPOINT = Path("model_zoo/default/mobilenet_v3_small_digits.pt")


class TorchServingSettings(ServingSettings):
    variant: str = "torch"
    port: int = Field(8001, ge=0, le=65535, validation_alias=AliasChoices("TORCH_PORT", "PORT", "port"))
    workers: int = Field(1, ge=1, validation_alias=AliasChoices("TORCH_WORKERS", "WORKERS", "workers"))
    model_checkpoint: Path = DEFAULT_CHECKPOINT
