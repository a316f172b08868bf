"""OnnxPredictor: uint8 (N, H, W, 3) images into the fused graph, which does the preprocessing itself.

Batching: images of the same height and width go into one ``session.run`` as one ``[N, H, W, 3]`` tensor; a
batch of mixed sizes runs one call per distinct size (the fused graph resizes per call, so it cannot take
ragged input), and the rows are put back in request order.

CPU check: the default artifact is optimized at ORT's ``all`` level, whose NCHWc layout nodes are specific to
the CPU that built it. When ``manifest.json`` marks the artifact hardware specific and this CPU's fingerprint
(``serving_core.cpu``) differs from the recorded one, the load is refused; there is no silent fallback.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model_zoo.card import sha256_of
from onnx_serving.session import open_session
from serving_core.cpu import cpu_fingerprint, fingerprint_mismatch
from serving_core.errors import ModelLoadError
from serving_core.predictor import BatchOutput, LoadedModel, Predictor, card_or_error

# The artifact contract written by onnx_graph_transform (kept as literals: this image ships without that
# package).
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
CARD_FILE = "model.card.json"
MANIFEST_FILE = "manifest.json"
PORTABLE_FILE = "fused.portable.onnx"
NCHWC_DOMAIN = b"com.microsoft.nchwc"  # operator domain of ORT's CPU-specific layout nodes


def _manifest_entry(model_path: Path) -> dict[str, Any] | None:
    """The artifact's entry in the ``manifest.json`` beside it ({} if unlisted), None without a manifest."""
    manifest_path = model_path.with_name(MANIFEST_FILE)
    if not manifest_path.is_file():
        return None
    return json.loads(manifest_path.read_text()).get("artifacts", {}).get(model_path.name, {})


def _check_status(model_path: Path, entry: dict[str, Any] | None) -> None:
    """Refuse an artifact the build's validation rejected."""
    status = (entry or {}).get("status")
    if status is not None and status != "accepted":
        raise ModelLoadError(
            f"{model_path.name} is marked '{status}' in {MANIFEST_FILE}; refusing to serve it"
        )


def _check_cpu(model_path: Path, entry: dict[str, Any] | None) -> bool:
    """Refuse a hardware-specific artifact this CPU may not run; returns whether it is hardware specific."""
    if entry is None:
        # No manifest to vouch for the CPU: look for the layout domain in the file. The build drops unused
        # opset imports; a raw ORT save imports the domain regardless and is refused, on the safe side.
        if NCHWC_DOMAIN not in model_path.read_bytes():
            return False
        reason = f"there is no {MANIFEST_FILE} recording the CPU it was optimized on"
    elif not entry.get("hardware_specific"):
        return False
    else:
        reason = fingerprint_mismatch(entry.get("cpu_fingerprint"), cpu_fingerprint())
        if reason is None:
            return True
    raise ModelLoadError(
        f"{model_path.name} holds ONNX Runtime layout optimizations specific to the CPU that built it, and "
        f"{reason}. Serve the portable artifact instead (ONNX_MODEL=.../{PORTABLE_FILE}) or rebuild the "
        "artifacts on this machine with `make artifacts`"
    )


def _check_interface(session: ort.InferenceSession, num_classes: int, model_name: str) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if (
        len(inputs) != 1
        or inputs[0].name != INPUT_NAME
        or inputs[0].type != "tensor(uint8)"
        or len(inputs[0].shape) != 4
    ):
        found = [(i.name, i.type, i.shape) for i in inputs]
        raise ModelLoadError(
            f"{model_name} must take one uint8 [N, H, W, 3] input named '{INPUT_NAME}', has {found}"
        )
    output_names = [o.name for o in outputs]
    if OUTPUT_NAME not in output_names:
        raise ModelLoadError(f"{model_name} has no output named '{OUTPUT_NAME}' (outputs: {output_names})")
    classes = next(o for o in outputs if o.name == OUTPUT_NAME).shape[-1]
    if isinstance(classes, int) and classes != num_classes:
        raise ModelLoadError(f"{model_name} outputs {classes} classes, its model card has {num_classes}")


class OnnxPredictor(Predictor):
    runtime = "onnxruntime"

    def _load(self) -> LoadedModel:
        model_path = self.settings.onnx_model
        if not model_path.is_file():
            raise ModelLoadError(
                f"ONNX model {model_path.name} not found (set ONNX_MODEL or run `make artifacts`)"
            )
        card = card_or_error(self.settings.model_card or model_path.with_name(CARD_FILE))
        entry = _manifest_entry(model_path)
        _check_status(model_path, entry)
        hardware_specific = _check_cpu(model_path, entry)
        session = open_session(model_path, self.settings.threads, self.settings.inter_op_threads)
        _check_interface(session, card.num_classes, model_path.name)
        self._session = session
        return LoadedModel(
            card=card,
            artifact=model_path,
            artifact_sha256=sha256_of(model_path),
            extra={
                "manifest_status": (entry or {}).get("status"),
                "optimization_level": (entry or {}).get("level"),
                "hardware_specific": hardware_specific,
                "graph_optimization_level_at_load": "ORT_DISABLE_ALL",
                "cpu_memory_arena": False,
                "thread_spinning": False,
                "intra_op_threads": self.settings.threads,
                "inter_op_threads": self.settings.inter_op_threads,
                "providers": session.get_providers(),
            },
        )

    def _predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        started = time.perf_counter()
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            groups[image.shape].append(index)
        batches = [
            (
                indices,
                images[indices[0]][np.newaxis]
                if len(indices) == 1
                else np.stack([images[i] for i in indices]),
            )
            for indices in groups.values()
        ]
        arranged = time.perf_counter()
        probabilities = np.empty((len(images), len(self.loaded.card.labels)), dtype=np.float32)
        for indices, tensor in batches:
            (rows,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(tensor)})
            probabilities[indices] = rows
        finished = time.perf_counter()
        return BatchOutput(
            probabilities=probabilities,
            preprocess_ms=(arranged - started) * 1000.0,
            inference_ms=(finished - arranged) * 1000.0,
        )

    def _versions(self) -> dict[str, str]:
        return {"onnxruntime": ort.__version__}
