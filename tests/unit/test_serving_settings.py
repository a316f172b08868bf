"""The variants' settings: per-variant ports and workers fall back to the shared variables; the core knows no
variant."""

from __future__ import annotations

from pathlib import Path

import pytest

import serving_core.settings
from onnx_serving.settings import OnnxServingSettings
from serving_core.settings import ServingSettings
from torch_serving.settings import TorchServingSettings

# Variables read through aliases rather than field names.
ALIASED_VARIABLES = ("TORCH_PORT", "ONNX_PORT", "TORCH_WORKERS", "ONNX_WORKERS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every variable the settings read: an exported .env or another test must not leak in."""
    fields = {*TorchServingSettings.model_fields, *OnnxServingSettings.model_fields}
    for name in (*fields, *ALIASED_VARIABLES):
        monkeypatch.delenv(name.upper(), raising=False)


def test_defaults_work_from_the_repo_root() -> None:
    torch_settings, onnx_settings = TorchServingSettings(), OnnxServingSettings()
    assert (torch_settings.variant, torch_settings.port) == ("torch", 8001)
    assert (onnx_settings.variant, onnx_settings.port) == ("onnx", 8002)
    assert torch_settings.threads == 1 and torch_settings.max_body_bytes == 20 * 1024 * 1024
    assert str(onnx_settings.onnx_model) == "build/artifacts/fused.optimized.onnx"
    assert torch_settings.admin_token is None
    assert str(torch_settings.model_checkpoint) == "model_zoo/default/mobilenet_v3_small_digits.pt"


def test_variant_specific_fields_live_in_their_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "onnx_model" not in ServingSettings.model_fields
    assert "model_checkpoint" not in ServingSettings.model_fields
    assert "onnx_model" not in TorchServingSettings.model_fields
    assert "model_checkpoint" not in OnnxServingSettings.model_fields
    # The variable names stay what .env.example documents.
    monkeypatch.setenv("ONNX_MODEL", "elsewhere/fused.portable.onnx")
    monkeypatch.setenv("MODEL_CHECKPOINT", "elsewhere/model.pt")
    assert str(OnnxServingSettings().onnx_model) == "elsewhere/fused.portable.onnx"
    assert str(TorchServingSettings().model_checkpoint) == "elsewhere/model.pt"


def test_the_core_names_no_variant() -> None:
    core = Path(serving_core.settings.__file__).parent
    for module in core.rglob("*.py"):
        source = module.read_text()
        assert "onnx_serving" not in source and "torch_serving" not in source, module


def test_variant_specific_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("ONNX_PORT", "9002")
    monkeypatch.setenv("TORCH_WORKERS", "3")
    assert TorchServingSettings().port == 9000 and TorchServingSettings().workers == 3
    assert OnnxServingSettings().port == 9002 and OnnxServingSettings().workers == 1


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADS", "0")
    with pytest.raises(ValueError):
        TorchServingSettings()
