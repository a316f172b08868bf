"""OnnxPredictor: uint8 (N, H, W, 3) images into the fused graph, which does the preprocessing itself.

Batching: one ``session.run`` per distinct image size (``serving_core.predictor.same_size_batches``).

CPU check: the default artifact is optimized at ORT's ``all`` level, whose NCHWc layout nodes are specific to
the CPU that built it. When ``manifest.json`` marks the artifact hardware specific and this CPU's fingerprint
(``artifact_contract.cpu``) differs from the recorded one, the load is refused; there is no silent fallback.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from artifact_contract import (
    CARD_FILE,
    IMAGE_INPUT,
    MANIFEST_FILE,
    NCHWC_DOMAIN,
    PORTABLE_FILE,
    PROBABILITIES_OUTPUT,
)
from artifact_contract.cpu import cpu_fingerprint, fingerprint_mismatch
from artifact_contract.manifest import ServedArtifact, served_artifact
from artifact_contract.session import open_session
from model_zoo.card import sha256_of
from onnx_serving.settings import OnnxServingSettings
from serving_core.errors import ModelLoadError
from serving_core.predictor import (
    BatchOutput,
    LoadedModel,
    OperatorProfile,
    Predictor,
    card_or_error,
    refuse_unaccepted,
    same_size_batches,
)

PROFILER = "onnxruntime enable_profiling (kernel time by op type)"


def _check_cpu(model_path: Path, entry: ServedArtifact | None) -> bool:
    """Refuse a hardware-specific artifact this CPU may not run; returns whether it is hardware specific."""
    if entry is None:
        # No manifest to vouch for the CPU: look for the layout domain in the file. The build drops unused
        # opset imports; a raw ORT save imports the domain regardless and is refused, on the safe side.
        if NCHWC_DOMAIN.encode() not in model_path.read_bytes():
            return False
        reason = f"there is no {MANIFEST_FILE} recording the CPU it was optimized on"
    elif not entry.hardware_specific:
        return False
    else:
        reason = fingerprint_mismatch(entry.cpu_fingerprint, cpu_fingerprint())
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
        or inputs[0].name != IMAGE_INPUT
        or inputs[0].type != "tensor(uint8)"
        or len(inputs[0].shape) != 4
    ):
        found = [(i.name, i.type, i.shape) for i in inputs]
        raise ModelLoadError(
            f"{model_name} must take one uint8 [N, H, W, 3] input named '{IMAGE_INPUT}', has {found}"
        )
    output_names = [o.name for o in outputs]
    if PROBABILITIES_OUTPUT not in output_names:
        raise ModelLoadError(
            f"{model_name} has no output named '{PROBABILITIES_OUTPUT}' (outputs: {output_names})"
        )
    classes = next(o for o in outputs if o.name == PROBABILITIES_OUTPUT).shape[-1]
    if isinstance(classes, int) and classes != num_classes:
        raise ModelLoadError(f"{model_name} outputs {classes} classes, its model card has {num_classes}")


class OnnxPredictor(Predictor):
    runtime = "onnxruntime"
    fused_preprocessing = True
    operator_profiler = PROFILER
    settings: OnnxServingSettings

    def _load(self) -> LoadedModel:
        model_path = self.settings.onnx_model
        if not model_path.is_file():
            raise ModelLoadError(
                f"ONNX model {model_path.name} not found (set ONNX_MODEL or run `make artifacts`)"
            )
        card = card_or_error(self.settings.model_card or model_path.with_name(CARD_FILE))
        entry = served_artifact(model_path)
        refuse_unaccepted(model_path, entry.status if entry is not None else None, MANIFEST_FILE)
        hardware_specific = _check_cpu(model_path, entry)
        session = open_session(model_path, self.settings.threads, self.settings.inter_op_threads)
        _check_interface(session, card.num_classes, model_path.name)
        self._session = session
        return LoadedModel(
            card=card,
            artifact=model_path,
            artifact_sha256=sha256_of(model_path),
            extra={
                "manifest_status": entry.status if entry is not None else None,
                "optimization_level": entry.level if entry is not None else None,
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
        batches = same_size_batches(images)
        arranged = time.perf_counter()
        probabilities = np.empty((len(images), len(self.loaded.card.labels)), dtype=np.float32)
        for indices, tensor in batches:
            (rows,) = self._session.run([PROBABILITIES_OUTPUT], {IMAGE_INPUT: np.ascontiguousarray(tensor)})
            probabilities[indices] = rows
        finished = time.perf_counter()
        return BatchOutput(
            probabilities=probabilities,
            preprocess_ms=(arranged - started) * 1000.0,
            inference_ms=(finished - arranged) * 1000.0,
        )

    def _versions(self) -> dict[str, str]:
        return {"onnxruntime": ort.__version__}

    def profile_operators(self, image: np.ndarray, calls: int, out_dir: Path) -> OperatorProfile:
        """A second session on the same file with the served session's options plus profiling."""
        options = self._session.get_session_options()
        options.enable_profiling = True
        options.profile_file_prefix = str(out_dir / "ort_profile")
        session = ort.InferenceSession(
            str(self.loaded.artifact), sess_options=options, providers=self._session.get_providers()
        )
        feed = {IMAGE_INPUT: np.ascontiguousarray(image[np.newaxis])}
        for _ in range(calls + 1):
            session.run(None, feed)
        trace = out_dir / "ort_trace.json"
        shutil.move(session.end_profiling(), trace)
        total_us: dict[str, float] = defaultdict(float)
        occurrences: dict[str, int] = defaultdict(int)
        for event in json.loads(trace.read_text()):
            if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
                operator = event.get("args", {}).get("op_name", "?")
                total_us[operator] += float(event["dur"])
                occurrences[operator] += 1
        # The first run, a warmup, cannot be left out of ORT's trace: the totals cover every run.
        return OperatorProfile(PROFILER, calls + 1, trace, dict(total_us), dict(occurrences))
