"""serving_core.settings: per-variant ports and workers fall back to the shared variables."""

from __future__ import annotations

import pytest

from serving_core.settings import OnnxServingSettings, TorchServingSettings


def test_defaults_work_from_the_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "TORCH_PORT", "ONNX_PORT", "WORKERS", "VARIANT", "THREADS", "ONNX_MODEL"):
        monkeypatch.delenv(name, raising=False)
    torch_settings, onnx_settings = TorchServingSettings(), OnnxServingSettings()
    assert (torch_settings.variant, torch_settings.port) == ("torch", 8001)
    assert (onnx_settings.variant, onnx_settings.port) == ("onnx", 8002)
    assert torch_settings.threads == 1 and torch_settings.max_body_bytes == 20 * 1024 * 1024
    assert str(onnx_settings.onnx_model) == "build/artifacts/fused.optimized.onnx"
    assert torch_settings.admin_token is None


def test_variant_specific_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKERS", raising=False)
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("ONNX_PORT", "9002")
    monkeypatch.setenv("TORCH_WORKERS", "3")
    assert TorchServingSettings().port == 9000 and TorchServingSettings().workers == 3
    assert OnnxServingSettings().port == 9002 and OnnxServingSettings().workers == 1


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADS", "0")
    with pytest.raises(ValueError):
        TorchServingSettings()
