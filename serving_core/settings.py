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


# Longer than any client or proxy in front keeps an idle connection (nginx and AWS's load balancers keep one
# 60 s by default). A server that closes first races the client's next request on that connection: a POST
# the client wrote as the server closed fails, and is not retried (it is not idempotent). uvicorn's 5 s
# default did that to 2 of 18,631 soak requests on torch, whose busy event loop widens the window.
KEEP_ALIVE_TIMEOUT_DEFAULT = 75


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
    keep_alive_timeout: int = Field(
        KEEP_ALIVE_TIMEOUT_DEFAULT, ge=1, description="seconds an idle keep-alive connection is kept open"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    prometheus_multiproc_dir: Path | None = None
