"""How fast each fp32 artifact runs next to the torch reference: ``python -m onnx_graph_transform speed``.

One thread, batch of one, preprocessing included on both sides (the fused graph does it in ONNX, torch runs
``model_zoo.preprocess`` + the model + softmax). Beside the built artifacts, the same classifier fused with
the ``resize`` preprocessing strategy (ONNX Resize of the whole image, see ``fuse``) is built in memory and
optimized at load, so the served graph is timed against the straightforward one. The variants run in
interleaved rounds so that a busy machine slows them alike; medians are reported with each one's ratio to
the served artifact. Every variant's output is checked against the reference first, so a fast wrong graph
cannot be reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image

from artifact_contract import CLASSIFIER_FILE, IMAGE_INPUT, OPTIMIZED_FILE, PORTABLE_FILE
from artifact_contract.session import open_session
from model_zoo.card import Preprocessing
from onnx_graph_transform.fuse import fuse_preprocessing
from onnx_graph_transform.reference import reference_probabilities

DEFAULT_PHOTO = Path(__file__).resolve().parents[1] / "images" / "photo_medium.jpg"
TORCH_VARIANT = "torch eager"
RESIZE_ALTERNATIVE = "whole-image Resize (alternative)"
MAX_ABS_DELTA = 1e-4
WARMUP_RUNS = 3


def speed_inputs(photo: Path | None = DEFAULT_PHOTO, seed: int = 0) -> dict[str, np.ndarray]:
    """The photo payload (when present) and seeded random 640x480 and 224x224 images, uint8 HWC RGB."""
    rng = np.random.default_rng(seed)
    inputs = {}
    if photo is not None and photo.is_file():
        with Image.open(photo) as image:
            pixels = np.array(image.convert("RGB"))
        inputs[f"{photo.name} {pixels.shape[1]}x{pixels.shape[0]}"] = pixels
    inputs["640x480"] = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    inputs["224x224"] = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    return inputs


def whole_image_resize_session(out: Path, spec: Preprocessing) -> ort.InferenceSession | None:
    """The classifier in ``out`` fused with the ``resize`` strategy, optimized at load (level all)."""
    if not (out / CLASSIFIER_FILE).is_file():
        return None
    fused = fuse_preprocessing(onnx.load(str(out / CLASSIFIER_FILE)), spec, strategy="resize")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False  # as artifact_contract.session opens the served artifacts
    return ort.InferenceSession(fused.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _run_artifact(session: ort.InferenceSession, batch: np.ndarray) -> np.ndarray:
    return session.run(None, {IMAGE_INPUT: batch})[0]


def measure_speed(
    out: Path,
    model: torch.nn.Module,
    spec: Preprocessing,
    inputs: dict[str, np.ndarray],
    runs: int = 40,
    core: int | None = None,
) -> dict[str, dict[str, float]]:
    """Median milliseconds per call, ``{input: {variant: ms}}``, for the served and portable artifacts in
    ``out`` and the torch reference; raises AssertionError if an artifact disagrees with the reference.
    """
    if core is not None:
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    sessions = {
        f"{name} ({level})": open_session(out / name)
        for name, level in ((OPTIMIZED_FILE, "served"), (PORTABLE_FILE, "portable"))
        if (out / name).is_file()
    }
    alternative = whole_image_resize_session(out, spec)
    if alternative is not None:
        sessions[RESIZE_ALTERNATIVE] = alternative
    medians: dict[str, dict[str, float]] = {}
    for input_name, image in inputs.items():
        calls: dict[str, Callable[[], np.ndarray]] = {
            name: partial(_run_artifact, session, image[np.newaxis]) for name, session in sessions.items()
        }
        calls[TORCH_VARIANT] = partial(reference_probabilities, model, [image], spec)
        reference = calls[TORCH_VARIANT]()
        for name, call in calls.items():
            for _ in range(WARMUP_RUNS):
                output = call()
            delta = float(np.abs(output - reference).max())
            assert delta <= MAX_ABS_DELTA, f"{name} differs from the reference on {input_name}: {delta:.2e}"
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(runs):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - started)
        medians[input_name] = {name: float(np.median(values)) * 1000.0 for name, values in seconds.items()}
    return medians


def render_speed(medians: dict[str, dict[str, float]], runs: int) -> str:
    """One line per input: each variant's median and its ratio to the first (served) artifact."""
    lines = [f"median ms per image, 1 thread, batch 1, {runs} interleaved runs (x = time / first column)"]
    for input_name, by_variant in medians.items():
        baseline = next(iter(by_variant.values()))
        cells = [f"{name} {ms:6.2f} ms ({ms / baseline:.1f}x)" for name, ms in by_variant.items()]
        lines.append(f"  {input_name:26s} " + " | ".join(cells))
    return "\n".join(lines)
