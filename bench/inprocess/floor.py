"""The floor of one variant on one payload: the least a request could cost with the lab's fastest parts.

floor = (decode of the payload alone: ``serving_core.decode.decode_image`` on the image bytes, with the
variant's own decode settings, so a variant with JPEG_DRAFT on gets its DCT-scaled decode)
      + (the classifier network alone: the plain classifier ONNX export, ``1x3xCxC`` float32 at crop size, in
ONNX Runtime with one intra-op thread).

No body parsing, base64, resize, normalization, response or serialization: what the variant's in-process
ceiling spends above this sum is the cost of its strategy. The two parts are timed in alternation, each
iteration one decode then one network run, so a busy machine slows both alike.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from artifact_contract import CLASSIFIER_FILE, CLASSIFIER_INPUT
from serving_core import decode
from serving_core.predictor import Predictor
from serving_core.request_path import decode_limits
from serving_core.settings import ServingSettings

DEFAULT_CLASSIFIER = Path(__file__).resolve().parents[2] / "build" / "artifacts" / CLASSIFIER_FILE
NETWORK_THREADS = 1
MIN_SAMPLES = 10  # even past the time cap
SEED = 0


def network_session(path: Path) -> ort.InferenceSession:
    """The classifier alone, as fast as ORT runs it on one thread: every graph optimization at load, no pool
    threads spinning, no memory arena (as artifact_contract.session opens the served graph)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = NETWORK_THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def network_input(session: ort.InferenceSession) -> np.ndarray:
    """A seeded normalized-looking tensor of the model's own input shape, batch 1 (values do not change the
    work of a convolutional network)."""
    shape = [1 if not isinstance(dim, int) else dim for dim in session.get_inputs()[0].shape]
    return np.random.default_rng(SEED).standard_normal(shape, dtype=np.float32)


def _summary(samples: list[float], name: str) -> dict[str, float]:
    return {
        f"{name}_ms": statistics.median(samples),
        f"{name}_min_ms": min(samples),
        f"{name}_p90_ms": float(np.percentile(samples, 90.0)),
    }


def run_floor(
    predictor: Predictor,
    settings: ServingSettings,
    image_bytes: bytes,
    iterations: int,
    warmup: int,
    max_seconds: float,
    classifier: str | None = None,
) -> dict[str, Any]:
    """``warmup`` untimed rounds, then up to ``iterations`` timed decode + network rounds (fewer if time is
    up, never fewer than ``MIN_SAMPLES``); medians, minima and p90 of each part."""
    limits = decode_limits(settings, predictor)
    path = Path(classifier) if classifier else DEFAULT_CLASSIFIER
    session = network_session(path)
    tensor = network_input(session)
    feed = {CLASSIFIER_INPUT: tensor}
    image = decode.decode_image(image_bytes, limits)
    for _ in range(warmup):
        decode.decode_image(image_bytes, limits)
        session.run(None, feed)
    decode_ms: list[float] = []
    network_ms: list[float] = []
    started = time.perf_counter()
    while len(decode_ms) < iterations and (
        time.perf_counter() - started < max_seconds or len(decode_ms) < MIN_SAMPLES
    ):
        before = time.perf_counter()
        decode.decode_image(image_bytes, limits)
        between = time.perf_counter()
        session.run(None, feed)
        after = time.perf_counter()
        decode_ms.append((between - before) * 1000.0)
        network_ms.append((after - between) * 1000.0)
    return {
        "iterations": len(decode_ms),
        "warmup": warmup,
        "elapsed_s": time.perf_counter() - started,
        **_summary(decode_ms, "decode"),
        **_summary(network_ms, "network"),
        "decoded_size": [int(image.shape[1]), int(image.shape[0])],  # width, height
        "draft_min_side": limits.draft_min_side,
        "classifier": str(path),
        "network_input": list(tensor.shape),
        "network_runtime": f"onnxruntime {ort.__version__}",
        "network_threads": NETWORK_THREADS,
    }
