"""The torch side of every parity check: ``model_zoo.preprocess`` -> torch model -> softmax."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from model_zoo.card import Preprocessing
from model_zoo.preprocess import preprocess_image


def reference_probabilities(
    model: torch.nn.Module, images: Sequence[np.ndarray], spec: Preprocessing
) -> np.ndarray:
    """The reference pipeline applied to each image on its own; returns [N, classes] probabilities."""
    with torch.inference_mode():
        rows = [torch.softmax(model(preprocess_image(image, spec).unsqueeze(0)), dim=-1) for image in images]
    return torch.cat(rows).numpy()
