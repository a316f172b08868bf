"""Loading a checkpoint with its card refuses mismatched pairs with a clear error."""

from pathlib import Path

import pytest
import torch

from model_zoo.card import ModelCard, Preprocessing, card_path_for, sha256_of
from model_zoo.checkpoint import CheckpointError, load_classifier
from model_zoo.mobilenet_v3 import mobilenet_v3_small

SPEC = Preprocessing(resize_size=256, crop_size=224, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def _write_pair(directory: Path, num_classes: int = 3, **card_overrides: object) -> Path:
    torch.manual_seed(0)
    checkpoint = directory / "tiny.pt"
    torch.save(mobilenet_v3_small(num_classes=num_classes).state_dict(), checkpoint)
    fields: dict[str, object] = {
        "name": "tiny",
        "architecture": "mobilenet_v3_small",
        "num_classes": num_classes,
        "labels": [f"class{i}" for i in range(num_classes)],
        "preprocessing": SPEC,
        "weights_file": checkpoint.name,
        "weights_sha256": sha256_of(checkpoint),
    }
    fields.update(card_overrides)
    ModelCard(**fields).save(card_path_for(checkpoint))
    return checkpoint


def test_loads_a_matching_pair_in_eval_mode(tmp_path: Path) -> None:
    model, card = load_classifier(_write_pair(tmp_path))
    assert card.num_classes == 3
    assert not model.training
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_rejects_weights_the_card_was_not_written_for(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(_write_pair(tmp_path, weights_sha256="0" * 64))


def test_rejects_unknown_architecture(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_classifier(_write_pair(tmp_path, architecture="resnet50"))


def test_rejects_a_card_with_the_wrong_class_count(tmp_path: Path) -> None:
    checkpoint = _write_pair(tmp_path, num_classes=3)
    card = ModelCard.load(card_path_for(checkpoint))
    wrong = card.model_copy(update={"num_classes": 4, "labels": ["a", "b", "c", "d"]})
    wrong.save(tmp_path / "wrong.card.json")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_classifier(checkpoint, tmp_path / "wrong.card.json")
