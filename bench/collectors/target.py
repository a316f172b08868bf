"""What the collectors need from a running service and its runner, as protocols.

``bench.runners`` implements them (``Service``, ``Runner``) and imports the collectors' leaf helpers
(footprint, resources), so the collectors name only these protocols, not the runners.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bench.registry import Variant


class ServiceHandle(Protocol):
    variant: Variant

    def url(self, path: str) -> str: ...


class ServiceRunner(Protocol):
    def start(
        self, variant: Variant, *, cold: bool = False, log_path: Path | None = None
    ) -> ServiceHandle: ...

    def wait_ready(self, service: ServiceHandle) -> float: ...

    def stop(self, service: ServiceHandle) -> None: ...

    def startup_unmeasurable(self, variant: Variant) -> str | None: ...
