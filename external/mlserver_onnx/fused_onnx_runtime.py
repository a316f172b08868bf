"""An MLServer runtime for the lab's fused ONNX graph, on the Open Inference Protocol (v2).

It takes a BYTES tensor of encoded images, shape ``[N]``: base64 strings in a JSON body, raw bytes over gRPC.
Each image is decoded by the lab's own ``serving_core.decode`` (simplejpeg or Pillow, the same limits), then
run through the graph in a session opened by ``artifact_contract.session``, as onnx_serving does. The answer
is ``probabilities``, FP32 ``[N, classes]``; the client takes the top-1 itself. It runs in MLServer's own
virtual environment, with the repository root on PYTHONPATH (see README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

from artifact_contract import IMAGE_INPUT, PROBABILITIES_OUTPUT
from artifact_contract.cpu import cpu_fingerprint, fingerprint_mismatch
from artifact_contract.manifest import served_artifact
from artifact_contract.session import open_session
from serving_core.decode import DecodeLimits, decode_base64, decode_image
from serving_core.errors import ServingError
from serving_core.settings import ServingSettings

WARMUP_SHAPES = [(480, 640, 3), (224, 224, 3)]


class FusedOnnxRuntime(MLModel):
    async def load(self) -> bool:
        path = Path(await get_model_uri(self.settings))
        entry = served_artifact(path)
        if entry is not None and entry.hardware_specific:
            mismatch = fingerprint_mismatch(entry.cpu_fingerprint, cpu_fingerprint())
            if mismatch is not None:
                raise MLServerError(f"{path.name} is optimized for another CPU ({mismatch})", 500)
        self._session = open_session(path, threads=int(os.environ.get("THREADS", "1")))
        defaults = ServingSettings.model_fields  # the lab's decode limits, at their defaults
        self._limits = DecodeLimits(
            max_image_pixels=defaults["max_image_pixels"].default,
            max_aspect_ratio=defaults["max_aspect_ratio"].default,
        )
        if os.environ.get("WARMUP", "true").lower() == "true":
            rng = np.random.default_rng(0)
            for _ in range(3):
                for shape in WARMUP_SHAPES:
                    self._run(rng.integers(0, 256, size=shape, dtype=np.uint8))
        return True

    def _run(self, image: np.ndarray) -> np.ndarray:
        (rows,) = self._session.run([PROBABILITIES_OUTPUT], {IMAGE_INPUT: image[np.newaxis]})
        return rows

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        name = self.inputs[0].name if self.inputs else IMAGE_INPUT
        tensor = next((item for item in payload.inputs if item.name == name), None)
        if tensor is None or tensor.datatype != "BYTES":
            raise MLServerError(f"expected a BYTES input named {name!r} holding encoded images")
        try:
            images = [
                decode_image(item if isinstance(item, bytes) else decode_base64(item), self._limits)
                for item in tensor.data
            ]
        except ServingError as error:
            raise MLServerError(str(error), error.status_code) from None
        probabilities = np.concatenate([self._run(image) for image in images])
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(PROBABILITIES_OUTPUT, probabilities)],
        )
