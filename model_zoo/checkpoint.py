"""Load a classifier from a checkpoint (a plain state_dict) and its model card, checking they match."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from model_zoo.card import ModelCard, card_path_for, sha256_of
from model_zoo.mobilenet_v3 import mobilenet_v3_small

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
DEFAULT_CHECKPOINT = DEFAULT_DIR / "mobilenet_v3_small_digits.pt"
DEFAULT_CARD = card_path_for(DEFAULT_CHECKPOINT)

# Architectures a card may name; each constructor takes the number of classes.
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {"mobilenet_v3_small": mobilenet_v3_small}


class CheckpointError(ValueError):
    """The checkpoint and card do not form a loadable model."""


def build_model(card: ModelCard) -> nn.Module:
    try:
        constructor = ARCHITECTURES[card.architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise CheckpointError(f"unknown architecture {card.architecture!r} (known: {known})") from None
    return constructor(card.num_classes)


def load_classifier(
    checkpoint: str | Path = DEFAULT_CHECKPOINT, card_path: str | Path | None = None
) -> tuple[nn.Module, ModelCard]:
    """The model in eval mode with its card; the card defaults to ``<checkpoint stem>.card.json`` beside it.

    The checkpoint's sha256 must equal the card's ``weights_sha256`` and its keys must match the architecture
    exactly (``strict=True``), so a card can never describe weights it was not written for.
    """
    checkpoint = Path(checkpoint)
    card = ModelCard.load(card_path if card_path is not None else card_path_for(checkpoint))
    actual = sha256_of(checkpoint)
    if actual != card.weights_sha256:
        raise CheckpointError(f"{checkpoint} has sha256 {actual}, its card expects {card.weights_sha256}")
    model = build_model(card)
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{checkpoint} does not fit {card.architecture}: {error}") from error
    return model.eval(), card
