"""The runner interface: everything the bench needs from the place a variant runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bench.probe import NotReadyError, wait_ready
from bench.registry import Variant


class StartupError(RuntimeError):
    """A variant could not be started or never became ready."""


class ResourceSampler(Protocol):
    """Samples CPU% and memory of what serves a variant while load runs."""

    def start(self) -> None: ...

    def stop(self) -> list[dict[str, float]]:
        """The samples: dicts with t_s, cpu_percent, rss_bytes."""
        ...


@dataclass
class Service:
    """One running instance of a variant."""

    variant: Variant
    base_url: str
    spawned_at: float  # perf_counter when the runner launched it
    pid: int | None = None  # root of the process tree (local runner)
    container: str | None = None  # container id (compose runner)
    cores: list[int] | None = None  # CPU cores it is pinned to, None when not pinned
    log_path: Path | None = None
    handle: Any = field(default=None, repr=False)  # runner-private state

    def url(self, path: str) -> str:
        return self.base_url + path


class Runner(ABC):
    name: ClassVar[str]
    ready_timeout_s: float = 120.0

    @abstractmethod
    def start(self, variant: Variant, *, cold: bool = False, log_path: Path | None = None) -> Service:
        """Launch the variant (``cold``: warmup turned off); returns at once, before it is ready."""

    @abstractmethod
    def stop(self, service: Service) -> None:
        """Stop it and everything it spawned."""

    def process_exit(self, service: Service) -> str | None:
        """A description when the service's process has ended (it will never become ready), else None."""
        return None

    def wait_ready(self, service: Service) -> float:
        """Seconds from launch to the first 200 on the ready path."""
        try:
            return wait_ready(
                service.url(service.variant.ready_path),
                timeout_s=self.ready_timeout_s,
                started_at=service.spawned_at,
                process_exit=lambda: self.process_exit(service),
            )
        except NotReadyError as error:
            raise StartupError(f"{service.variant.name}: {error}{self._log_tail(service)}") from error

    def start_ready(self, variant: Variant, *, cold: bool = False, log_path: Path | None = None) -> Service:
        service = self.start(variant, cold=cold, log_path=log_path)
        try:
            self.wait_ready(service)
        except BaseException:
            self.stop(service)
            raise
        return service

    @abstractmethod
    def startup_unmeasurable(self, variant: Variant) -> str | None:
        """Why cold starts cannot be timed for this variant, or None when they can."""

    @abstractmethod
    def resource_sampler(self, service: Service) -> ResourceSampler | str:
        """A sampler for the service's CPU and memory, or the reason there is none."""

    @abstractmethod
    def footprint(self, variant: Variant, service: Service | None) -> dict[str, Any]:
        """Image size, layers and tools (compose) or dependency closure (local), plus artifact sizes."""

    def skip_reason(self, variant: Variant) -> str | None:
        """Why this runner cannot run ``variant`` at all (it is then skipped, not failed), or None."""
        return None

    def prepare(self, variants: list[Variant]) -> None:  # noqa: B027 (optional hook)
        """Check and clear what the run needs before anything is measured (nothing by default)."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the run left behind, also after a failure (nothing by default)."""

    def describe(self) -> dict[str, Any]:
        return {"runner": self.name}

    @staticmethod
    def _log_tail(service: Service, lines: int = 20) -> str:
        if service.log_path is None or not service.log_path.is_file():
            return ""
        tail = service.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- last lines of " + str(service.log_path) + " ---\n" + "\n".join(tail)
