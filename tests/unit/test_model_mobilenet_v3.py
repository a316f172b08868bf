"""MobileNetV3-small: torchvision-identical state_dict, loadable strictly, right output shapes."""

import json
from pathlib import Path

import pytest
import torch

from model_zoo.mobilenet_v3 import make_divisible, mobilenet_v3_small

KEYS_FILE = Path(__file__).parents[1] / "data" / "mobilenet_v3_small_state_dict_keys.json"


def _expected_entries() -> list[tuple[str, list[int]]]:
    document = json.loads(KEYS_FILE.read_text())
    return [(entry["key"], entry["shape"]) for entry in document["state_dict"]]


def _entries(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(key, list(tensor.shape)) for key, tensor in model.state_dict().items()]


def test_state_dict_matches_torchvision_keys_and_shapes_in_order() -> None:
    assert _entries(mobilenet_v3_small(num_classes=1000)) == _expected_entries()


def test_parameter_count_matches_torchvision() -> None:
    model = mobilenet_v3_small(num_classes=1000)
    assert sum(parameter.numel() for parameter in model.parameters()) == 2_542_856


def test_ten_class_head_differs_only_in_last_layer() -> None:
    expected = dict(_expected_entries())
    expected["classifier.3.weight"] = [10, 1024]
    expected["classifier.3.bias"] = [10]
    assert dict(_entries(mobilenet_v3_small(num_classes=10))) == expected


def test_strict_load_round_trip_reproduces_outputs() -> None:
    torch.manual_seed(0)
    source = mobilenet_v3_small(num_classes=10).eval()
    # Non-trivial running statistics, so a buffer that failed to load would change the output.
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    target = mobilenet_v3_small(num_classes=10).eval()
    target.load_state_dict(source.state_dict(), strict=True)
    images = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        torch.testing.assert_close(target(images), source(images), rtol=0, atol=0)


def test_strict_load_rejects_a_different_head() -> None:
    with pytest.raises(RuntimeError, match=r"classifier\.3\.weight"):
        mobilenet_v3_small(num_classes=10).load_state_dict(mobilenet_v3_small(num_classes=7).state_dict())


@pytest.mark.parametrize(("height", "width"), [(224, 224), (97, 131)])
def test_forward_gives_one_logit_row_per_image(height: int, width: int) -> None:
    model = mobilenet_v3_small(num_classes=10).eval()
    with torch.no_grad():
        logits = model(torch.randn(3, 3, height, width))
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()


def test_batchnorm_settings_follow_torchvision() -> None:
    norms = [m for m in mobilenet_v3_small(num_classes=10).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms
    assert {(norm.eps, norm.momentum) for norm in norms} == {(0.001, 0.01)}


@pytest.mark.parametrize(
    ("value", "expected"), [(72 // 4, 24), (88 // 4, 24), (16 // 4, 8), (576 // 4, 144), (1024, 1024)]
)
def test_make_divisible(value: int, expected: int) -> None:
    assert make_divisible(value) == expected


def test_rejects_non_positive_class_count() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        mobilenet_v3_small(num_classes=0)
