"""Train the default model: MobileNetV3-small from scratch on the rendered scikit-learn digits.

    python -m model_zoo.train [--epochs 6] [--out model_zoo/default] [--subset N] [--seed 0]

Every training image goes through ``model_zoo.preprocess.preprocess_image``, the preprocessing the
services apply, so what is served is what was validated. There is no augmentation beyond the rendering's own
variety (size, aspect ratio, colours, noise), so the preprocessed tensors are computed once, not every epoch.

Reproducible on CPU: fixed seed, deterministic algorithms, fixed thread count, seeded shuffling.

After training, BatchNorm running statistics are re-estimated over the training set: with torchvision's
momentum of 0.01 they lag far behind the weights after a few hundred steps, and eval-mode accuracy can sit
at chance.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import sklearn
import torch
from torch import nn

from model_zoo.card import ModelCard, Preprocessing, card_path_for, sha256_of
from model_zoo.checkpoint import DEFAULT_CHECKPOINT
from model_zoo.digits import DEFAULT_SEED, HELDOUT_FRACTION, LABELS, DigitSample, load_split
from model_zoo.mobilenet_v3 import mobilenet_v3_small
from model_zoo.preprocess import preprocess_batch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_PREPROCESSING = Preprocessing(resize_size=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
ARCHITECTURE = "mobilenet_v3_small"
WARMUP_FRACTION = 0.25


@dataclass(frozen=True)
class TrainConfig:
    seed: int = DEFAULT_SEED
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    threads: int = 2
    subset: int | None = None  # train on the first N training samples only (tests, quick checks)


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic, fixed-thread torch inside the block; previous settings restored after it."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


def warmup_cosine(step: int, total_steps: int, warmup_fraction: float = WARMUP_FRACTION) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to zero; valid for any step count."""
    warmup_steps = max(1, round(warmup_fraction * total_steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def tensorize(samples: list[DigitSample], spec: Preprocessing) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples -> (NCHW float32 network inputs through the reference preprocessing, int64 labels)."""
    inputs = preprocess_batch([sample.image for sample in samples], spec)
    labels = torch.tensor([sample.label for sample in samples], dtype=torch.int64)
    return inputs, labels


def train_model(
    inputs: torch.Tensor, labels: torch.Tensor, config: TrainConfig
) -> tuple[nn.Module, list[float]]:
    """Train from a seeded initialisation; returns the model and the mean loss of every epoch."""
    with deterministic(config.seed, config.threads):
        return _train(inputs, labels, config)


def _train(inputs: torch.Tensor, labels: torch.Tensor, config: TrainConfig) -> tuple[nn.Module, list[float]]:
    model = mobilenet_v3_small(num_classes=len(LABELS))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = -(-len(inputs) // config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(warmup_cosine, total_steps=config.epochs * steps_per_epoch)
    )
    shuffler = torch.Generator().manual_seed(config.seed)
    epoch_losses: list[float] = []
    model.train()
    for epoch in range(config.epochs):
        started = time.perf_counter()
        order = torch.randperm(len(inputs), generator=shuffler)
        total, seen = 0.0, 0
        for batch in order.split(config.batch_size):
            loss = nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        epoch_losses.append(total / seen)
        elapsed = time.perf_counter() - started
        print(f"epoch {epoch + 1}/{config.epochs}: loss {epoch_losses[-1]:.4f} ({elapsed:.1f} s)", flush=True)
    return model, epoch_losses


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> None:
    """Replace every BatchNorm's running statistics with their cumulative average over ``inputs``."""
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    saved_momentum = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None = cumulative moving average over all batches seen
        norm.train()
    for batch in inputs.split(batch_size):
        model(batch)
    for norm, momentum in zip(norms, saved_momentum, strict=True):
        norm.momentum = momentum
    model.eval()


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Class indices predicted in eval mode."""
    model.eval()
    return torch.cat([model(batch).argmax(dim=1) for batch in inputs.split(batch_size)])


def top1(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(model, inputs) == labels).float().mean())


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def write_model(
    model: nn.Module,
    checkpoint: Path,
    config: TrainConfig,
    spec: Preprocessing,
    train_count: int,
    heldout_count: int,
    heldout_top1: float,
    epoch_losses: list[float],
) -> ModelCard:
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), checkpoint)
    card = ModelCard(
        name=checkpoint.stem,
        architecture=ARCHITECTURE,
        num_classes=len(LABELS),
        labels=list(LABELS),
        preprocessing=spec,
        training={
            "data": "scikit-learn load_digits (1,797 8x8 scans, UCI optical digits) rendered by "
            "model_zoo.digits to RGB images of 40-160 px per side, dark ink on light tinted backgrounds, "
            "random aspect ratio",
            "split": f"stratified, {HELDOUT_FRACTION:.0%} held out "
            "(sklearn train_test_split, random_state=seed)",
            "train_count": train_count,
            "augmentation": "none beyond the randomized rendering",
            "optimizer": "AdamW, linear warm-up (25% of steps) then cosine decay, cross-entropy",
            "batchnorm": "running statistics re-estimated over the training set after training (cumulative)",
            "final_epoch_loss": round(epoch_losses[-1], 6),
            "command": "python -m model_zoo.train",
            **asdict(config),
        },
        metrics={"heldout_top1": round(heldout_top1, 6), "heldout_count": float(heldout_count)},
        versions=library_versions(),
        weights_file=checkpoint.name,
        weights_sha256=sha256_of(checkpoint),
    )
    card.save(card_path_for(checkpoint))
    return card


def run(config: TrainConfig, out_dir: Path, spec: Preprocessing = DEFAULT_PREPROCESSING) -> ModelCard:
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    train_samples, heldout_samples = load_split(config.seed)
    if config.subset is not None:
        train_samples = train_samples[: config.subset]
    train_inputs, train_labels = tensorize(train_samples, spec)
    heldout_inputs, heldout_labels = tensorize(heldout_samples, spec)
    print(f"preprocessed {len(train_samples)} train + {len(heldout_samples)} held-out images", flush=True)
    model, epoch_losses = train_model(train_inputs, train_labels, config)
    recalibrate_batchnorm(model, train_inputs, config.batch_size)
    accuracy = top1(model, heldout_inputs, heldout_labels)
    card = write_model(
        model,
        out_dir / DEFAULT_CHECKPOINT.name,
        config,
        spec,
        len(train_samples),
        len(heldout_samples),
        accuracy,
        epoch_losses,
    )
    elapsed = time.perf_counter() - started
    print(f"held-out top-1 {accuracy:.4f} on {len(heldout_samples)} images; {elapsed:.0f} s in total")
    print(f"wrote {out_dir / card.weights_file} (sha256 {card.weights_sha256[:12]}...) and its card")
    return card


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m model_zoo.train", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT.parent, help="output directory")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N training images only")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    args = parser.parse_args(argv)
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        threads=args.threads,
        subset=args.subset,
    )
    run(config, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
