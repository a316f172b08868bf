"""serving_core.settings: per-variant ports and workers fall back to the shared variables."""

from __future__ import annotations

import pytest

from serving_core.settings import OnnxServingSettings, ServingSettings, TorchServingSettings

# Variables read through aliases rather than field names.
ALIASED_VARIABLES = ("TORCH_PORT", "ONNX_PORT", "TORCH_WORKERS", "ONNX_WORKERS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every variable the settings read: an exported .env or another test must not leak in."""
    for name in (*ServingSettings.model_fields, *ALIASED_VARIABLES):
        monkeypatch.delenv(name.upper(), raising=False)


def test_defaults_work_from_the_repo_root() -> None:
    torch_settings, onnx_settings = TorchServingSettings(), OnnxServingSettings()
    assert (torch_settings.variant, torch_settings.port) == ("torch", 8001)
    assert (onnx_settings.variant, onnx_settings.port) == ("onnx", 8002)
    assert torch_settings.threads == 1 and torch_settings.max_body_bytes == 20 * 1024 * 1024
    assert str(onnx_settings.onnx_model) == "build/artifacts/fused.optimized.onnx"
    assert torch_settings.admin_token is None


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
