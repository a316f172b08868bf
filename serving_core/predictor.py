"""The Predictor interface: the only thing a serving variant implements (besides its three-line entry point).

A predictor is built from settings, ``load()``-ed once, and is immutable afterwards: a reload builds and loads
a new predictor and swaps the reference, so requests already running finish on the model they started with.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_zoo.card import ModelCard
from serving_core.errors import ModelLoadError, without_paths
from serving_core.settings import ServingSettings

MODEL_HASH_LENGTH = 12


@dataclass(frozen=True)
class BatchOutput:
    """Softmax probabilities, one row per input image, and where the time went."""

    probabilities: np.ndarray
    preprocess_ms: float
    inference_ms: float


@dataclass
class LoadedModel:
    """What every predictor knows after ``load()``."""

    card: ModelCard
    artifact: Path
    artifact_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_hash(self) -> str:
        return self.artifact_sha256[:MODEL_HASH_LENGTH]


class Predictor(abc.ABC):
    """Subclasses set ``runtime`` and implement ``_load``, ``_predict`` and ``_versions``."""

    runtime: str = "unknown"

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self._loaded: LoadedModel | None = None

    @abc.abstractmethod
    def _load(self) -> LoadedModel:
        """Read the configured artifacts; raise on failure (``load`` wraps it into ModelLoadError)."""

    @abc.abstractmethod
    def _predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        """uint8 (H, W, 3) RGB images of any sizes -> probabilities, shape (len(images), num_classes)."""

    @abc.abstractmethod
    def _versions(self) -> dict[str, str]:
        """Library versions that matter for this runtime."""

    def load(self) -> LoadedModel:
        try:
            self._loaded = self._load()
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(without_paths(f"{type(exc).__name__}: {exc}")) from exc
        return self._loaded

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            raise RuntimeError("predictor used before load()")
        return self._loaded

    @property
    def labels(self) -> list[str]:
        return self.loaded.card.labels

    @property
    def model_hash(self) -> str:
        return self.loaded.model_hash

    @property
    def resize_size(self) -> int:
        return self.loaded.card.preprocessing.resize_size

    def predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        if not images:
            raise ValueError("predict needs at least one image")
        return self._predict(images)

    def warm_up(self, iterations: int) -> float:
        """Run representative inputs through the path so the first real request pays no initialization."""
        rng = np.random.default_rng(0)
        crop = self.loaded.card.preprocessing.crop_size
        shapes = [(480, 640, 3), (crop, crop, 3)]
        started = time.perf_counter()
        for _ in range(iterations):
            for shape in shapes:
                self.predict([rng.integers(0, 256, size=shape, dtype=np.uint8)])
        return (time.perf_counter() - started) * 1000.0

    def describe(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "name": self.runtime,
            "artifact": loaded.artifact.name,
            "artifact_sha256": loaded.artifact_sha256,
            **loaded.extra,
        }

    def versions(self) -> dict[str, str]:
        return self._versions()


PredictorFactory = Callable[[ServingSettings], Predictor]


def card_or_error(path: Path) -> ModelCard:
    if not path.is_file():
        raise ModelLoadError(f"model card {path.name} not found")
    return ModelCard.load(path)
