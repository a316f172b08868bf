"""The real build as ``make artifacts`` runs it: the committed checkpoint, every held-out image, int8."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from artifact_contract import (
    INT8_FILE,
    MANIFEST_FILE,
    OPTIMIZED_FILE,
    PORTABLE_FILE,
    VALIDATION_FILE,
)
from model_zoo.card import sha256_of
from model_zoo.checkpoint import DEFAULT_CARD, DEFAULT_CHECKPOINT

REPO_ROOT = Path(__file__).resolve().parents[2]
HELDOUT_IMAGES = REPO_ROOT / "images" / "digits"


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onnx_graph_transform", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def real_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real") / "artifacts"
    result = _cli("build", "--out", str(out), "--quantize", "--images", str(HELDOUT_IMAGES))
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.slow
def test_default_checkpoint_passes_the_fp32_parity_gate_on_every_heldout_image(real_build: Path) -> None:
    validation = json.loads((real_build / VALIDATION_FILE).read_text())
    expected_images = len(json.loads((HELDOUT_IMAGES / "manifest.json").read_text())["images"])
    fp32 = validation["fp32"]
    assert fp32["heldout"]["images"] == expected_images
    assert fp32["heldout"]["top1_agreement"] == 1.0
    assert fp32["heldout"]["max_abs_delta"] <= 1e-4
    assert all(case["max_abs_delta"] <= 1e-4 for case in fp32["synthetic"])
    assert fp32["gate"]["passed"] is True
    # The portable (CPU-independent) artifact faces the same gate.
    portable = validation["portable"]
    assert portable["heldout"]["images"] == expected_images
    assert portable["heldout"]["top1_agreement"] == 1.0
    assert portable["gate"]["max_abs_delta"] <= 1e-4 and portable["gate"]["passed"] is True
    # The artifact is as accurate as the torch model it came from, which met the project's 95% bar.
    assert fp32["heldout"]["candidate_accuracy"] == fp32["heldout"]["reference_accuracy"] >= 0.95


@pytest.mark.slow
def test_manifest_matches_the_files_and_the_committed_model(real_build: Path) -> None:
    manifest = json.loads((real_build / MANIFEST_FILE).read_text())
    for name, artifact in manifest["artifacts"].items():
        assert artifact["sha256"] == sha256_of(real_build / name), name
    assert manifest["model"]["weights_sha256"] == sha256_of(DEFAULT_CHECKPOINT)
    assert manifest["model"]["card_sha256"] == sha256_of(DEFAULT_CARD)
    assert manifest["serve"]["fp32"] == OPTIMIZED_FILE
    assert manifest["serve"]["portable"] == PORTABLE_FILE
    status = manifest["artifacts"][INT8_FILE]["status"]
    assert manifest["serve"]["int8"] == (INT8_FILE if status == "accepted" else None)


@pytest.mark.slow
def test_summary_command_prints_the_verdicts(real_build: Path) -> None:
    result = _cli("summary", "--out", str(real_build))
    assert result.returncode == 0, result.stderr
    assert "fp32 fused.optimized.onnx: PASSED" in result.stdout
    assert "portable fused.portable.onnx: PASSED" in result.stdout
    assert "int8 fused.optimized.int8.onnx:" in result.stdout
