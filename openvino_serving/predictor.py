"""OpenVinoPredictor: uint8 (N, H, W, 3) images into the fused ONNX graph, compiled by OpenVINO for the CPU.

The graph is ``fused.portable.onnx``, the one ``onnx_serving`` validates against the torch reference, with the
preprocessing (shorter-side antialiased resize, centre crop, normalize) inside it; OpenVINO's ONNX frontend
reads it and the CPU plugin compiles it once, with dynamic batch, height and width. ``fused.optimized.onnx``
holds ONNX Runtime's own layout operators (``com.microsoft.nchwc``), which OpenVINO cannot read: it is
refused with that reason.

Batching: one inference call per distinct image size (``serving_core.predictor.same_size_batches``). A new
input size costs the CPU plugin about 2 ms of shape inference on its first call, nothing afterwards.

An infer request is not safe for two calls at once, so the predictor keeps ``INFERENCE_CONCURRENCY`` of them
and each call borrows one.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from openvino.frontend import FrontEndManager

from artifact_contract import (
    CARD_FILE,
    IMAGE_INPUT,
    MANIFEST_FILE,
    NCHWC_DOMAIN,
    PORTABLE_FILE,
    PROBABILITIES_OUTPUT,
)
from artifact_contract.manifest import ServedArtifact, served_artifact
from model_zoo.card import sha256_of
from openvino_serving.settings import OpenVinoServingSettings
from serving_core.errors import ModelLoadError
from serving_core.predictor import (
    BatchOutput,
    LoadedModel,
    Predictor,
    card_or_error,
    refuse_unaccepted,
    same_size_batches,
)

DEVICE = "CPU"
# Properties read back from the compiled model into /info.
REPORTED = (
    "INFERENCE_NUM_THREADS",
    "NUM_STREAMS",
    "PERFORMANCE_HINT",
    "INFERENCE_PRECISION_HINT",
    "ENABLE_CPU_PINNING",
    "ENABLE_HYPER_THREADING",
    "EXECUTION_DEVICES",
)


def compile_config(threads: int) -> dict[str, Any]:
    return {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        # f32 kernels only: on CPUs with AMX or AVX512-BF16 the default is bf16, far outside the parity gate.
        "INFERENCE_PRECISION_HINT": "f32",
        # The bench and the containers pin the process themselves; OpenVINO must not move its threads.
        "ENABLE_CPU_PINNING": False,
        "ENABLE_HYPER_THREADING": False,
    }


def _check_artifact(model_path: Path, entry: ServedArtifact | None) -> None:
    """Refuse what the build's validation rejected and the graphs only ONNX Runtime can read."""
    refuse_unaccepted(model_path, entry.status if entry is not None else None, MANIFEST_FILE)
    if entry is not None:
        ort_specific = entry.hardware_specific
    else:  # no manifest: look for the layout domain in the file, as onnx_serving does
        ort_specific = NCHWC_DOMAIN.encode() in model_path.read_bytes()
    if ort_specific:
        raise ModelLoadError(
            f"{model_path.name} holds ONNX Runtime's CPU-specific layout operators ({NCHWC_DOMAIN}), which "
            f"OpenVINO cannot read: serve the portable graph (OPENVINO_MODEL=.../{PORTABLE_FILE})"
        )


def read_onnx(model_path: Path) -> ov.Model:
    """Through the ONNX frontend only: ``Core.read_model`` also tries every other framework's parser on a
    file it cannot read, and reports none of their reasons."""
    frontend = FrontEndManager().load_by_framework("onnx")
    try:
        return frontend.convert(frontend.load(str(model_path)))
    except Exception as exc:
        reason = [line for line in str(exc).splitlines() if line.strip()][-1:] or [type(exc).__name__]
        raise ModelLoadError(f"OpenVINO cannot read {model_path.name} as an ONNX model: {reason[0]}") from exc


def _check_interface(model: ov.Model, num_classes: int, model_name: str) -> None:
    inputs = model.inputs
    if (
        len(inputs) != 1
        or IMAGE_INPUT not in inputs[0].get_names()
        or inputs[0].get_element_type() != ov.Type.u8
        or inputs[0].get_partial_shape().rank != 4
    ):
        found = [(sorted(i.names), i.element_type.get_type_name(), str(i.partial_shape)) for i in inputs]
        raise ModelLoadError(
            f"{model_name} must take one uint8 [N, H, W, 3] input named '{IMAGE_INPUT}', has {found}"
        )
    outputs = [o for o in model.outputs if PROBABILITIES_OUTPUT in o.get_names()]
    if not outputs:
        names = [sorted(o.get_names()) for o in model.outputs]
        raise ModelLoadError(f"{model_name} has no output named '{PROBABILITIES_OUTPUT}' (outputs: {names})")
    classes = outputs[0].get_partial_shape()[-1]
    if classes.is_static and classes.get_length() != num_classes:
        raise ModelLoadError(
            f"{model_name} outputs {classes.get_length()} classes, its model card has {num_classes}"
        )


class OpenVinoPredictor(Predictor):
    runtime = "openvino"
    fused_preprocessing = True
    settings: OpenVinoServingSettings

    def _load(self) -> LoadedModel:
        model_path = self.settings.openvino_model
        if not model_path.is_file():
            raise ModelLoadError(
                f"ONNX model {model_path.name} not found (set OPENVINO_MODEL or run `make artifacts`)"
            )
        card = card_or_error(self.settings.model_card or model_path.with_name(CARD_FILE))
        entry = served_artifact(model_path)
        _check_artifact(model_path, entry)
        model = read_onnx(model_path)
        _check_interface(model, card.num_classes, model_path.name)
        core = ov.Core()
        compiled = core.compile_model(model, DEVICE, compile_config(self.settings.threads))
        self._output = compiled.output(PROBABILITIES_OUTPUT)
        self._requests: queue.SimpleQueue[ov.InferRequest] = queue.SimpleQueue()
        for _ in range(self.settings.inference_concurrency):
            self._requests.put(compiled.create_infer_request())
        return LoadedModel(
            card=card,
            artifact=model_path,
            artifact_sha256=sha256_of(model_path),
            extra={
                "manifest_status": entry.status if entry is not None else None,
                "device": core.get_property(DEVICE, "FULL_DEVICE_NAME"),
                **{name.lower(): _jsonable(compiled.get_property(name)) for name in REPORTED},
                "infer_requests": self.settings.inference_concurrency,
            },
        )

    def _predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        started = time.perf_counter()
        batches = same_size_batches(images)
        arranged = time.perf_counter()
        probabilities = np.empty((len(images), len(self.loaded.card.labels)), dtype=np.float32)
        request = self._requests.get()
        try:
            for indices, tensor in batches:
                # Shared both ways: no copy of the pixels in, the rows are copied out before the next call.
                result = request.infer([np.ascontiguousarray(tensor)], share_inputs=True, share_outputs=True)
                probabilities[indices] = result[self._output]
        finally:
            self._requests.put(request)
        finished = time.perf_counter()
        return BatchOutput(
            probabilities=probabilities,
            preprocess_ms=(arranged - started) * 1000.0,
            inference_ms=(finished - arranged) * 1000.0,
        )

    def _versions(self) -> dict[str, str]:
        return {"openvino": ov.get_version()}


def _jsonable(value: object) -> object:
    if isinstance(value, ov.Type):
        return value.get_type_name()
    return value if isinstance(value, bool | int | float | list) else str(value)
