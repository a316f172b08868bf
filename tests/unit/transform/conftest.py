"""Small classifiers and helpers for the onnx_graph_transform tests (real torch, real ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from model_zoo.card import Preprocessing
from onnx_graph_transform.export import export_classifier
from onnx_graph_transform.reference import reference_probabilities

# Small sizes keep the tests fast; the real card's 256/224 is exercised by the slow build test.
SMALL_SPEC = Preprocessing(
    resize_size=40, crop_size=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)
NUM_CLASSES = 5


class TinyResNet(nn.Module):
    """A residual CNN, unlike MobileNetV3: plain convs, a skip connection, max pooling."""

    def __init__(self, num_classes: int = NUM_CLASSES, softmax: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, num_classes)
        self.softmax = softmax

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.stem(pixels)
        features = torch.relu(features + self.branch(features))
        logits = self.head(features.mean(dim=(2, 3)))
        return torch.softmax(logits, dim=-1) if self.softmax else logits


def seeded_tiny_resnet(softmax: bool = False) -> TinyResNet:
    torch.manual_seed(0)
    model = TinyResNet(softmax=softmax).eval()
    with torch.no_grad():  # large head weights make the probabilities sensitive to every pixel
        model.head.weight.mul_(20.0)
    return model


def reference(model: nn.Module, images: np.ndarray, spec: Preprocessing = SMALL_SPEC) -> np.ndarray:
    """``model_zoo.preprocess`` -> torch model -> softmax, image by image."""
    return reference_probabilities(model, list(images), spec)


def session(model: onnx.ModelProto | str | Path) -> ort.InferenceSession:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def random_images(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def tiny_resnet() -> TinyResNet:
    return seeded_tiny_resnet()


@pytest.fixture(scope="session")
def tiny_resnet_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_resnet: TinyResNet) -> onnx.ModelProto:
    return export_classifier(
        tiny_resnet, tmp_path_factory.mktemp("export") / "tiny.onnx", SMALL_SPEC.crop_size
    )


def handwritten_classifier(opset: int = 13) -> tuple[onnx.ModelProto, nn.Module]:
    """A classifier written directly with onnx.helper at an older opset, plus an equivalent torch module.

    Its input is ``data`` and an internal tensor is named ``image``: the fusion must rename what collides.
    """
    rng = np.random.default_rng(1)
    weight = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    dense = rng.normal(0, 3.0, (NUM_CLASSES, 4)).astype(np.float32)
    bias = rng.normal(0, 0.1, NUM_CLASSES).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["data", "conv_weight"], ["image"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", ["image"], ["activated"]),
            helper.make_node("GlobalAveragePool", ["activated"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "dense", "bias"], ["scores"], transB=1),
        ],
        "handwritten",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", NUM_CLASSES])],
        initializer=[
            numpy_helper.from_array(weight, "conv_weight"),
            numpy_helper.from_array(dense, "dense"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)

    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    linear = nn.Linear(4, NUM_CLASSES)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        linear.weight.copy_(torch.from_numpy(dense))
        linear.bias.copy_(torch.from_numpy(bias))
    torch_model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear).eval()
    return model, torch_model
