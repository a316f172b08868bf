"""The framework variants (ray_serving, bentoml_serving) host onnx_serving's predictor: they name the same
predictor and settings classes as onnx's registry entry, and their images, which install their own
requirements file alone, get onnx_serving's runtime pin (kept the same here) and their framework pinned
exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.registry import load_registry
from bentoml_serving.settings import BentoServingSettings
from ray_serving.settings import RayServeSettings
from serving_core.settings import ServingSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS: dict[str, tuple[type[RayServeSettings | BentoServingSettings], str]] = {
    "ray_serving": (RayServeSettings, "ray[serve]"),
    "bentoml_serving": (BentoServingSettings, "bentoml"),
}


def pins(path: Path) -> dict[str, str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==", 1) for line in lines if "==" in line)


@pytest.mark.parametrize("package", sorted(FRAMEWORKS))
def test_framework_variant_hosts_onnxs_predictor_with_its_own_name_port_and_workers(package: str) -> None:
    settings_class, _ = FRAMEWORKS[package]
    onnx = next(variant for variant in load_registry() if variant.name == "onnx").in_process
    assert onnx is not None
    own = settings_class(port=9999, workers=3)
    assert (own.hosted_predictor, own.hosted_settings) == (onnx.predictor, onnx.settings)
    predictor, hosted = own.hosted()
    assert f"{predictor.__module__}:{predictor.__qualname__}" == onnx.predictor
    assert isinstance(hosted, ServingSettings) and type(hosted).__name__ == onnx.settings.rsplit(":", 1)[1]
    assert (hosted.variant, hosted.port, hosted.workers) == (own.variant, 9999, 3)


@pytest.mark.parametrize("package", sorted(FRAMEWORKS))
def test_framework_variant_image_gets_onnxs_runtime_pin_and_its_framework_pinned(package: str) -> None:
    _, framework = FRAMEWORKS[package]
    onnx = pins(REPO_ROOT / "onnx_serving" / "requirements.txt")
    own = pins(REPO_ROOT / package / "requirements.txt")
    assert {name: own.get(name) for name in onnx} == onnx
    assert own.get(framework), f"{package}/requirements.txt must pin {framework} exactly"
