"""torch classifier -> ONNX, with the dynamo exporter.

The exported graph takes a float NCHW batch named ``input`` and returns ``logits``. The batch dimension is
dynamic: with the dynamo exporter it must be declared AND exercised by an example batch larger than one, or
the exporter specializes it to the example's constant.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
import torch

from artifact_contract import CLASSIFIER_INPUT, CLASSIFIER_OUTPUT

DEFAULT_OPSET = 18
EXAMPLE_BATCH = 2


def export_classifier(
    model: torch.nn.Module,
    path: str | Path,
    input_size: int,
    opset: int = DEFAULT_OPSET,
) -> onnx.ModelProto:
    """Export ``model`` (in eval mode) for square ``input_size`` inputs; save it and return the graph."""
    if opset < DEFAULT_OPSET:
        raise ValueError(f"opset {opset} is too old: antialiased Resize needs opset >= {DEFAULT_OPSET}")
    model = model.eval()
    example = torch.zeros(EXAMPLE_BATCH, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1)
    # The exporter logs "torchvision is not installed" notes that concern no classifier here.
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    previous_level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # internal deprecation chatter that the user cannot act on
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[CLASSIFIER_INPUT],
                output_names=[CLASSIFIER_OUTPUT],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
    finally:
        registration_log.setLevel(previous_level)
    program.save(str(path))
    exported = onnx.load(str(path))
    onnx.checker.check_model(exported, full_check=True)
    return exported
