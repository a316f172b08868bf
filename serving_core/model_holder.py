"""Holds the predictor being served and swaps it atomically on reload, in every worker.

A reload builds a fresh predictor, loads and warms it off the event loop, then replaces one reference:
requests already running finish on the old model, new ones get the new one, none fails. With several uvicorn
workers the worker that received ``/admin/reload`` bumps a generation counter in ``SERVING_RUNTIME_DIR``; the
other workers poll it and reload themselves within about half a second. The first worker to get ready also
leaves a mark there, so a worker the supervisor starts later (to replace one that died) knows the service is
already serving and loads its model before it accepts connections (``replaces_a_worker``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from serving_core import metrics
from serving_core.errors import ModelLoadError, NotReadyError
from serving_core.predictor import Predictor, PredictorFactory
from serving_core.settings import RUNTIME_DIR_ENV, ServingSettings

log = logging.getLogger("serving_core.model")

GENERATION_FILE = "reload_generation"
SERVED_FILE = "served"  # exists once a worker of this service has been ready
GENERATION_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class ReloadOutcome:
    previous_model_hash: str | None
    model_hash: str
    load_ms: float


def _runtime_dir() -> Path | None:
    directory = os.environ.get(RUNTIME_DIR_ENV)
    return Path(directory) if directory else None


def _read_generation(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_generation(path: Path, generation: int) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(str(generation))
    temporary.replace(path)


class ModelHolder:
    def __init__(self, factory: PredictorFactory, settings: ServingSettings) -> None:
        self._factory = factory
        self._settings = settings
        self._predictor: Predictor | None = None
        self._lock = asyncio.Lock()
        runtime_dir = _runtime_dir()
        self._generation_path = runtime_dir / GENERATION_FILE if runtime_dir else None
        self._served_path = runtime_dir / SERVED_FILE if runtime_dir else None
        self._generation = _read_generation(self._generation_path)
        self.load_error: str | None = None
        self.reloads = 0

    def replaces_a_worker(self) -> bool:
        """Whether another worker of this service has been ready before this one started (this one replaces
        a worker that died): it then has no reason to answer 503 while the others serve."""
        return self._served_path is not None and self._served_path.exists()

    @property
    def predictor(self) -> Predictor | None:
        return self._predictor

    def require(self) -> Predictor:
        predictor = self._predictor
        if predictor is None:
            reason = f": {self.load_error}" if self.load_error else " yet"
            raise NotReadyError(f"the model is not loaded{reason}", headers={"Retry-After": "1"})
        return predictor

    def _build(self) -> Predictor:
        predictor = self._factory(self._settings)
        predictor.load()
        if self._settings.warmup:
            warm_ms = predictor.warm_up(self._settings.warmup_iterations)
            log.info(
                "model warmed up", extra={"warmup_ms": round(warm_ms, 1), "model_hash": predictor.model_hash}
            )
        return predictor

    async def initial_load(self) -> None:
        try:
            predictor = await anyio.to_thread.run_sync(self._build)
        except ModelLoadError as exc:
            self.load_error = exc.message
            log.error("model load failed; /ready stays 503", extra={"reason": exc.message})
            return
        self._predictor = predictor
        metrics.set_ready(True)  # per worker: /metrics reports each worker's readiness
        if self._served_path is not None:
            self._served_path.touch()
        log.info("ready", extra={"model_hash": predictor.model_hash, "variant": self._settings.variant})

    async def reload(self, *, broadcast: bool = True) -> ReloadOutcome:
        async with self._lock:
            previous = self._predictor.model_hash if self._predictor else None
            started = time.perf_counter()
            try:
                predictor = await anyio.to_thread.run_sync(self._build)
            except ModelLoadError:
                metrics.RELOADS.labels("failed").inc()
                raise
            self._predictor = predictor
            self.load_error = None
            self.reloads += 1
            metrics.RELOADS.labels("succeeded").inc()
            metrics.set_ready(True)
            if broadcast and self._generation_path is not None:
                self._generation = _read_generation(self._generation_path) + 1
                _write_generation(self._generation_path, self._generation)
            outcome = ReloadOutcome(previous, predictor.model_hash, (time.perf_counter() - started) * 1000.0)
            log.info(
                "model reloaded", extra={"previous_model_hash": previous, "model_hash": outcome.model_hash}
            )
            return outcome

    async def follow_reloads(self) -> None:
        """Background task: reload when another worker of this service has reloaded."""
        if self._generation_path is None:
            return
        while True:
            await asyncio.sleep(GENERATION_POLL_SECONDS)
            current = _read_generation(self._generation_path)
            if current <= self._generation or self._lock.locked():
                continue
            self._generation = current
            try:
                await self.reload(broadcast=False)
            except ModelLoadError as exc:
                log.error("reload requested by another worker failed", extra={"reason": exc.message})
