"""Training is reproducible, BatchNorm recalibration works, the committed model is what its card says."""

from pathlib import Path

import pytest
import torch

from model_zoo.card import ModelCard, Preprocessing, sha256_of
from model_zoo.checkpoint import DEFAULT_CARD, DEFAULT_CHECKPOINT, load_classifier
from model_zoo.digits import load_split
from model_zoo.mobilenet_v3 import mobilenet_v3_small
from model_zoo.train import (
    TrainConfig,
    main,
    recalibrate_batchnorm,
    tensorize,
    top1,
    train_model,
    warmup_cosine,
)

# A small input size keeps the determinism check fast; the pipeline is the same as the real one.
SMALL = Preprocessing(resize_size=72, crop_size=64, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def small_batch() -> tuple[torch.Tensor, torch.Tensor]:
    train, _ = load_split(seed=0)
    return tensorize(train[:48], SMALL)


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(small_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    inputs, labels = small_batch[0][:32], small_batch[1][:32]
    config = TrainConfig(epochs=2, batch_size=16, seed=3)
    threads_before = torch.get_num_threads()
    first_model, first_losses = train_model(inputs, labels, config)
    assert not torch.are_deterministic_algorithms_enabled(), "process-wide settings must be restored"
    assert torch.get_num_threads() == threads_before
    second_model, second_losses = train_model(inputs, labels, config)
    assert first_losses == second_losses
    first_state, second_state = first_model.state_dict(), second_model.state_dict()
    assert first_state.keys() == second_state.keys()
    for key, tensor in first_state.items():
        assert torch.equal(tensor, second_state[key]), key
    other_model, other_losses = train_model(inputs, labels, TrainConfig(epochs=2, batch_size=16, seed=4))
    assert other_losses != first_losses
    assert not torch.equal(
        other_model.state_dict()["classifier.3.weight"], first_state["classifier.3.weight"]
    )


def test_batchnorm_recalibration_uses_the_cumulative_average(
    small_batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = mobilenet_v3_small(num_classes=10)
    inputs = small_batch[0]
    recalibrate_batchnorm(model, inputs, batch_size=16)  # three equal batches
    stem_conv, stem_norm = model.features[0][0], model.features[0][1]
    with torch.no_grad():
        expected_mean = stem_conv(inputs).mean(dim=(0, 2, 3))
    torch.testing.assert_close(stem_norm.running_mean, expected_mean, rtol=1e-4, atol=1e-5)
    assert stem_norm.momentum == 0.01, "the training momentum must be restored"
    assert not model.training


def test_committed_card_describes_the_committed_checkpoint() -> None:
    card = ModelCard.load(DEFAULT_CARD)
    assert card.weights_file == DEFAULT_CHECKPOINT.name
    assert card.weights_sha256 == sha256_of(DEFAULT_CHECKPOINT)
    assert card.architecture == "mobilenet_v3_small"
    assert card.labels == [str(digit) for digit in range(10)]
    assert (card.preprocessing.resize_size, card.preprocessing.crop_size) == (256, 224)
    assert card.metrics["heldout_top1"] >= 0.95
    assert card.metrics["heldout_count"] >= 0.2 * 1797
    assert {"torch", "numpy", "scikit-learn", "python"} <= card.versions.keys()
    assert DEFAULT_CHECKPOINT.stat().st_size <= 12 * 1024 * 1024


@pytest.mark.slow
def test_committed_checkpoint_reaches_its_stated_heldout_accuracy() -> None:
    model, card = load_classifier(DEFAULT_CHECKPOINT)
    _, heldout = load_split(seed=int(card.training["seed"]))
    inputs, labels = tensorize(heldout, card.preprocessing)
    accuracy = top1(model, inputs, labels)
    assert accuracy >= 0.95
    assert accuracy == pytest.approx(card.metrics["heldout_top1"], abs=1e-6)


@pytest.mark.slow
def test_command_line_writes_a_loadable_checkpoint_and_card(tmp_path: Path) -> None:
    assert main(["--epochs", "1", "--subset", "16", "--batch-size", "8", "--out", str(tmp_path)]) == 0
    model, card = load_classifier(tmp_path / DEFAULT_CHECKPOINT.name)
    assert card.training["subset"] == 16
    assert card.training["train_count"] == 16
    assert card.metrics["heldout_count"] == 360
    assert 0.0 <= card.metrics["heldout_top1"] <= 1.0
    assert not model.training


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 23, 138])
def test_learning_rate_schedule_warms_up_then_decays(total_steps: int) -> None:
    factors = [warmup_cosine(step, total_steps) for step in range(total_steps)]
    assert all(0.0 <= factor <= 1.0 for factor in factors)
    peak = factors.index(1.0)
    assert factors[: peak + 1] == sorted(factors[: peak + 1])
    assert factors[peak:] == sorted(factors[peak:], reverse=True)
    if total_steps >= 8:
        assert factors[0] < 0.5 and factors[-1] < 0.1
