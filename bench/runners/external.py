"""Variants given by URL: already running somewhere, so the bench only sends them requests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from bench.collectors.footprint import artifact_sizes
from bench.registry import Variant
from bench.results import not_measured
from bench.runners.base import ResourceSampler, Runner, Service

NOT_STARTED = "url variant: already running, not started by the bench"


class ExternalRunner(Runner):
    name: ClassVar[str] = "url"

    def start(self, variant: Variant, *, cold: bool = False, log_path: Path | None = None) -> Service:
        assert variant.url is not None
        return Service(variant=variant, base_url=variant.url, spawned_at=time.perf_counter())

    def stop(self, service: Service) -> None:
        """Nothing to stop: the bench did not start it."""

    def startup_unmeasurable(self, variant: Variant) -> str | None:
        return NOT_STARTED

    def resource_sampler(self, service: Service) -> ResourceSampler | str:
        return NOT_STARTED

    def footprint(self, variant: Variant, service: Service | None) -> dict[str, Any]:
        return {
            "kind": "url",
            "dependency_closure": not_measured(NOT_STARTED),
            "image": not_measured(NOT_STARTED),
            "artifacts": artifact_sizes(variant.artifact_paths),
        }
