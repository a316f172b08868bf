"""TorchPredictor: the card's preprocessing in torch ops, ``model.eval()``, ``torch.inference_mode()``."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from model_zoo.card import card_path_for, sha256_of
from model_zoo.checkpoint import load_classifier
from model_zoo.preprocess import preprocess_batch
from serving_core.predictor import BatchOutput, LoadedModel, Predictor

# Decoded images are read-only views of Pillow's buffer; preprocessing only reads them, so the copy torch
# asks for would be wasted time.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


class TorchPredictor(Predictor):
    runtime = "pytorch-eager"

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
