"""The model card: everything a service needs to know about a checkpoint besides its weights.

A card travels with every checkpoint as ``<checkpoint>.card.json``. It is plain JSON validated by pydantic, so
the services (including the torch-free ONNX one) can read it without importing torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Preprocessing(BaseModel):
    """How a decoded uint8 RGB image becomes the network's input (see ``model_zoo.preprocess``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_format: Literal["RGB uint8 HWC"] = "RGB uint8 HWC"
    resize_policy: Literal["shorter_side_then_center_crop"] = "shorter_side_then_center_crop"
    resize_size: int = Field(gt=0, description="the shorter side is resized to this many pixels")
    crop_size: int = Field(gt=0, description="side of the square centre crop taken after the resize")
    interpolation: Literal["bilinear"] = "bilinear"
    antialias: bool = True
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @model_validator(mode="after")
    def _crop_fits(self) -> Preprocessing:
        if self.crop_size > self.resize_size:
            raise ValueError("crop_size must not exceed resize_size")
        return self


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    architecture: str
    num_classes: int = Field(gt=1)
    labels: list[str]
    preprocessing: Preprocessing
    training: dict[str, object] = Field(default_factory=dict, description="data set, split, seed, epochs")
    metrics: dict[str, float] = Field(default_factory=dict, description="held-out figures, e.g. heldout_top1")
    versions: dict[str, str] = Field(default_factory=dict, description="library versions used to train")
    weights_file: str = Field(description="checkpoint file name, relative to the card")
    weights_sha256: str

    @model_validator(mode="after")
    def _labels_match_classes(self) -> ModelCard:
        if len(self.labels) != self.num_classes:
            raise ValueError(f"{len(self.labels)} labels for {self.num_classes} classes")
        return self

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        return cls.model_validate_json(Path(path).read_text())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_path_for(checkpoint: str | Path) -> Path:
    """``model.pt`` -> ``model.card.json`` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".card.json")
