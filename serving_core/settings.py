"""The environment variables every serving variant reads (documented line by line in ``.env.example``).

A variant subclasses ``ServingSettings`` in its own ``settings.py`` with its ``variant`` name, its default
port and the variables only it reads (its artifact path, say).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Set by serving_core.server for its workers, never by users: where workers share state (reload generation,
# metrics).
RUNTIME_DIR_ENV = "SERVING_RUNTIME_DIR"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServingSettings(BaseSettings):
    """Settings shared by every variant; relative paths resolve against the working directory (repo root)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, protected_namespaces=())

    variant: str = Field("serving", description="name reported in every response, /info and the metrics")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    threads: int = Field(1, ge=1, description="intra-op threads per worker (torch.set_num_threads / ORT)")
    inter_op_threads: int = Field(1, ge=1)
    inference_concurrency: int = Field(1, ge=1, description="inference calls running at once per worker")
    decode_concurrency: int = Field(1, ge=1, description="image decodes running at once per worker")
    model_card: Path | None = Field(None, description="unset: the card beside the served artifact")
    top_k: int = Field(5, ge=1)
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(50_000_000, ge=1)
    max_aspect_ratio: float = Field(20.0, ge=1, description="longest/shortest side; refuses slivers")
    max_batch_items: int = Field(32, ge=1)
    warmup: bool = True
    warmup_iterations: int = Field(3, ge=1)
    admin_token: SecretStr | None = None
    max_in_flight: int = Field(64, ge=0, description="requests handled at once per worker; 0 = unbounded")
    jpeg_draft: bool = False
    graceful_timeout: int = Field(10, ge=0, description="seconds in-flight requests get after SIGTERM")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    prometheus_multiproc_dir: Path | None = None
