"""Parity of the ONNX artifacts with the torch reference pipeline, and the gates that decide what is served.

fp32 gate: on every held-out image AND on synthetic images of awkward sizes, top-1 agreement 100% and max
|delta p| <= 1e-4 against ``model_zoo.preprocess`` + the torch model + softmax. int8 gate (MLPerf's rule):
held-out top-1 accuracy >= 99% of the fp32 artifact's accuracy, else ``rejected``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from artifact_contract import IMAGE_INPUT
from model_zoo.digits import load_split

FP32_MAX_ABS_DELTA = 1e-4
FP32_MIN_AGREEMENT = 1.0
INT8_MIN_ACCURACY_RATIO = 0.99
# (batch, height, width): odd margins, both orientations, tiny, large, aspect ratios of 20 (upsampled along
# the short side, downsampled along the long one), and batches.
SYNTHETIC_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 480, 640),
    (1, 300, 451),
    (1, 451, 300),
    (1, 1080, 1920),
    (1, 224, 224),
    (1, 3, 2),
    (1, 1, 1),
    (1, 2000, 100),
    (1, 37, 740),
    (2, 257, 255),
    (3, 333, 517),
)

Reference = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class LabelledImages:
    images: list[np.ndarray]
    labels: np.ndarray
    source: str


def load_heldout(images_dir: str | Path) -> LabelledImages:
    """Every image listed in ``<images_dir>/manifest.json``, decoded to uint8 HWC RGB, with its label."""
    images_dir = Path(images_dir)
    entries = json.loads((images_dir / "manifest.json").read_text())["images"]
    if not entries:
        raise ValueError(f"{images_dir}/manifest.json lists no images")
    images = []
    for entry in entries:
        with Image.open(images_dir / entry["file"]) as image:
            images.append(np.array(image.convert("RGB"), dtype=np.uint8))
    labels = np.array([entry["label"] for entry in entries], dtype=np.int64)
    return LabelledImages(images, labels, f"{images_dir}/manifest.json")


def heldout_images(images_dir: str | Path) -> LabelledImages:
    """The held-out PNGs if ``images_dir`` has them, else the same split rendered by ``model_zoo.digits``."""
    if (Path(images_dir) / "manifest.json").exists():
        return load_heldout(images_dir)
    samples = load_split()[1]
    return LabelledImages(
        [sample.image for sample in samples],
        np.array([sample.label for sample in samples], dtype=np.int64),
        "model_zoo.digits.load_split() held-out (no images manifest found)",
    )


def synthetic_batches(seed: int = 0) -> list[np.ndarray]:
    """Seeded random uint8 batches of the ``SYNTHETIC_SHAPES``."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8) for n, h, w in SYNTHETIC_SHAPES]


def memoized(reference: Reference) -> Reference:
    """``reference`` computed once per distinct list of images (keyed by their pixels), for validating
    several artifacts against the same torch outputs.
    """
    cache: dict[bytes, np.ndarray] = {}

    def cached(images: Sequence[np.ndarray]) -> np.ndarray:
        digest = hashlib.blake2b(digest_size=16)
        for image in images:
            digest.update(f"{image.shape}{image.dtype.str}".encode())
            digest.update(np.ascontiguousarray(image).tobytes())
        key = digest.digest()
        if key not in cache:
            cache[key] = reference(images)
        return cache[key]

    return cached


def run_artifact(session: ort.InferenceSession, images: Sequence[np.ndarray]) -> np.ndarray:
    """The artifact's probabilities for each image, fed one at a time (batch of one); [N, classes]."""
    return np.concatenate([session.run(None, {IMAGE_INPUT: image[np.newaxis]})[0] for image in images])


def compare(
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None
) -> dict[str, object]:
    """Top-1 agreement and |delta p| of two [N, classes] probability arrays (+ accuracies given labels)."""
    deltas = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    agree = reference.argmax(axis=1) == candidate.argmax(axis=1)
    result: dict[str, object] = {
        "images": len(reference),
        "top1_agreement": float(agree.mean()),
        "disagreements": int((~agree).sum()),
        "max_abs_delta": float(deltas.max()),
        "mean_abs_delta": float(deltas.mean()),
    }
    if labels is not None:
        result["reference_accuracy"] = float((reference.argmax(axis=1) == labels).mean())
        result["candidate_accuracy"] = float((candidate.argmax(axis=1) == labels).mean())
    return result


def validate_fp32(
    session: ort.InferenceSession, reference: Reference, heldout: LabelledImages, seed: int = 0
) -> dict[str, object]:
    """fp32 artifact vs reference on the held-out set and the synthetic sizes, with the gate verdict."""
    heldout_result = compare(reference(heldout.images), run_artifact(session, heldout.images), heldout.labels)
    synthetic = []
    for batch in synthetic_batches(seed):
        candidate = session.run(None, {IMAGE_INPUT: batch})[0]
        synthetic.append({"shape": list(batch.shape), **compare(reference(list(batch)), candidate)})
    everything = [heldout_result, *synthetic]
    worst_delta = max(float(case["max_abs_delta"]) for case in everything)
    worst_agreement = min(float(case["top1_agreement"]) for case in everything)
    passed = worst_delta <= FP32_MAX_ABS_DELTA and worst_agreement >= FP32_MIN_AGREEMENT
    return {
        "heldout": heldout_result,
        "synthetic": synthetic,
        "gate": {
            "rule": f"top-1 agreement >= {FP32_MIN_AGREEMENT:.0%}, max |delta p| <= {FP32_MAX_ABS_DELTA:g}",
            "max_abs_delta": worst_delta,
            "top1_agreement": worst_agreement,
            "passed": passed,
        },
    }


def int8_verdict(
    int8_accuracy: float, fp32_accuracy: float, ratio: float = INT8_MIN_ACCURACY_RATIO
) -> dict[str, object]:
    required = ratio * fp32_accuracy
    return {
        "rule": f"int8 top-1 >= {ratio:g} x fp32 top-1",
        "required_accuracy": required,
        "accuracy": int8_accuracy,
        "status": "accepted" if int8_accuracy >= required else "rejected",
    }


def validate_int8(
    session: ort.InferenceSession,
    fp32_session: ort.InferenceSession,
    heldout: LabelledImages,
    ratio: float = INT8_MIN_ACCURACY_RATIO,
) -> dict[str, object]:
    """int8 artifact vs the fp32 artifact on the held-out set, with the accept/reject verdict."""
    fp32 = run_artifact(fp32_session, heldout.images)
    result = compare(fp32, run_artifact(session, heldout.images), heldout.labels)
    verdict = int8_verdict(float(result["candidate_accuracy"]), float(result["reference_accuracy"]), ratio)
    return {"heldout_vs_fp32": result, "gate": verdict}
