"""The Predictor interface: what a serving variant implements (besides its settings and entry point).

A predictor is built from settings, ``load()``-ed once, and is immutable afterwards: a reload builds and loads
a new predictor and swaps the reference, so requests already running finish on the model they started with.

Besides the three required methods a predictor declares what its runtime can do, as class attributes the
bench reads instead of testing runtime names: ``fused_preprocessing`` (the model's graph does the
preprocessing) and ``operator_profiler`` with its ``profile_operators`` hook.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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


@dataclass(frozen=True)
class OperatorProfile:
    """Time per operator over ``runs`` inference calls of one image, and the raw trace saved beside it."""

    profiler: str
    runs: int
    trace: Path
    total_us: dict[str, float]
    occurrences: dict[str, int]


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
    """Subclasses set ``runtime`` and implement ``_load``, ``_predict`` and ``_versions``; they override the
    capabilities below when their runtime has them.
    """

    runtime: str = "unknown"
    fused_preprocessing: ClassVar[bool] = False
    """True when the model's graph does the preprocessing: ``BatchOutput.preprocess_ms`` then only times the
    batch arrangement, and ``inference_ms`` includes the preprocessing."""
    operator_profiler: ClassVar[str | None] = None
    """What ``profile_operators`` measures (e.g. "torch.profiler (self CPU time)"); None: no profiler."""

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

    def profile_operators(self, image: np.ndarray, calls: int, out_dir: Path) -> OperatorProfile:
        """Time the whole predict work (preprocessing and model) of ``image`` by operator over at least
        ``calls`` calls (``runs`` in the result says how many the totals cover); save the raw trace (Chrome
        trace format) in ``out_dir``.
        """
        raise NotImplementedError(f"no operator profiler for runtime {self.runtime!r}")


PredictorFactory = Callable[[ServingSettings], Predictor]


def same_size_batches(images: Sequence[np.ndarray]) -> list[tuple[list[int], np.ndarray]]:
    """The images grouped by shape, each group one ``[N, H, W, 3]`` tensor with the request indices of its
    rows, in order of first appearance: a graph that resizes per call (a fused one) cannot take ragged input,
    so a batch of mixed sizes runs one call per distinct size and the rows are put back in request order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(image.shape, []).append(index)
    return [
        (
            indices,
            images[indices[0]][np.newaxis] if len(indices) == 1 else np.stack([images[i] for i in indices]),
        )
        for indices in groups.values()
    ]


def refuse_unaccepted(model_path: Path, status: str | None, manifest_name: str) -> None:
    """Refuse an artifact the build's validation did not accept (``status`` from its manifest entry; None: no
    gate applies to the file)."""
    if status is not None and status != "accepted":
        raise ModelLoadError(
            f"{model_path.name} is marked '{status}' in {manifest_name}; refusing to serve it"
        )


def card_or_error(path: Path) -> ModelCard:
    if not path.is_file():
        raise ModelLoadError(f"model card {path.name} not found")
    return ModelCard.load(path)
