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
    """The reference pipeline applied to each image on its own; returns [N, classes] probabilities.

    Runs torch on one thread: batch-of-one inference gains nothing from more, and on a busy 2-core machine two
    threads measured 8x slower (144 vs 17 ms per held-out image).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            batches = [preprocess_image(image, spec).unsqueeze(0) for image in images]
            rows = [torch.softmax(model(batch), dim=-1) for batch in batches]
    finally:
        torch.set_num_threads(threads)
    return torch.cat(rows).numpy()
