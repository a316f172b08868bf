"""TorchPredictor: the card's preprocessing in torch ops, ``model.eval()``, ``torch.inference_mode()``."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from model_zoo.card import card_path_for, sha256_of
from model_zoo.checkpoint import load_classifier
from model_zoo.preprocess import preprocess_batch
from serving_core.predictor import BatchOutput, LoadedModel, OperatorProfile, Predictor
from torch_serving.settings import TorchServingSettings

PROFILER = "torch.profiler (self CPU time)"

# Decoded images are read-only views of Pillow's buffer; preprocessing only reads them, so the copy torch
# asks for would be wasted time.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


class TorchPredictor(Predictor):
    runtime = "pytorch-eager"
    operator_profiler = PROFILER
    settings: TorchServingSettings

    def _load(self) -> LoadedModel:
        torch.set_num_threads(self.settings.threads)
        if torch.get_num_interop_threads() != self.settings.inter_op_threads:
            # Only settable before the first parallel op; a reload keeps the first value.
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(self.settings.inter_op_threads)
        checkpoint = self.settings.model_checkpoint
        card_path = self.settings.model_card or card_path_for(checkpoint)
        model, card = load_classifier(checkpoint, card_path)
        self._model = model.eval()
        return LoadedModel(
            card=card,
            artifact=checkpoint,
            artifact_sha256=sha256_of(checkpoint),
            extra={
                "intra_op_threads": torch.get_num_threads(),
                "inter_op_threads": torch.get_num_interop_threads(),
            },
        )

    def _predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        started = time.perf_counter()
        batch = preprocess_batch(images, self.loaded.card.preprocessing)
        preprocessed = time.perf_counter()
        with torch.inference_mode():
            probabilities = torch.softmax(self._model(batch), dim=1)
        finished = time.perf_counter()
        return BatchOutput(
            probabilities=probabilities.numpy(),
            preprocess_ms=(preprocessed - started) * 1000.0,
            inference_ms=(finished - preprocessed) * 1000.0,
        )

    def _versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def profile_operators(self, image: np.ndarray, calls: int, out_dir: Path) -> OperatorProfile:
        from torch.profiler import ProfilerActivity, profile  # only the bench profiles: not at start-up

        self.predict([image])
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(calls):
                self.predict([image])
        trace = out_dir / "torch_trace.json"
        profiler.export_chrome_trace(str(trace))
        events = [event for event in profiler.key_averages() if event.self_cpu_time_total > 0]
        return OperatorProfile(
            profiler=PROFILER,
            runs=calls,
            trace=trace,
            total_us={event.key: float(event.self_cpu_time_total) for event in events},
            occurrences={event.key: int(event.count) for event in events},
        )
