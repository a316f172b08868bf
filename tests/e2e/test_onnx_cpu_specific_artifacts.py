"""The served ONNX artifact is optimized for the build host's CPU; onnx_serving refuses it on another CPU.

Real artifacts from ``make artifacts``, real ONNX Runtime. "Another CPU" is simulated the only honest way
available on one machine: a copy of the artifacts whose manifest records a different CPU fingerprint.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest

from artifact_contract import CARD_FILE, MANIFEST_FILE, NCHWC_DOMAIN, OPTIMIZED_FILE, PORTABLE_FILE
from artifact_contract.cpu import KERNEL_ISA_FLAGS, cpu_fingerprint
from model_zoo.card import sha256_of
from onnx_serving.predictor import OnnxPredictor
from onnx_serving.settings import OnnxServingSettings
from serving_core.errors import ModelLoadError

SERVED = OPTIMIZED_FILE
PORTABLE = PORTABLE_FILE
COPIED = (SERVED, PORTABLE, CARD_FILE)
READY_TIMEOUT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    directory = REPO_ROOT / "build" / "artifacts"
    if not (directory / MANIFEST_FILE).is_file() or not (directory / PORTABLE).is_file():
        pytest.fail("build/artifacts is missing or predates fused.portable.onnx: run `make artifacts`")
    return directory


# Kernel-relevant flags this host does not have (a made-up one if it has them all), for the "other" CPU.
FOREIGN_FLAGS = sorted(KERNEL_ISA_FLAGS - set(cpu_fingerprint()["isa"]))[:2] or ["avx10_9_imaginary"]


def other_cpu_copy(artifacts_dir: Path, destination: Path, with_manifest: bool = True) -> Path:
    """The artifacts, with a manifest saying the served graph was optimized on a CPU with flags this one
    lacks (``FOREIGN_FLAGS``) and without AVX2."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(artifacts_dir / name, destination / name)
    if with_manifest:
        manifest = json.loads((artifacts_dir / MANIFEST_FILE).read_text())
        other = {**cpu_fingerprint(), "isa": sorted({*FOREIGN_FLAGS, "avx", "avx512f"})}
        manifest["artifacts"][SERVED]["cpu_fingerprint"] = other
        (destination / MANIFEST_FILE).write_text(json.dumps(manifest))
    return destination


def predictor_for(model: Path) -> OnnxPredictor:
    return OnnxPredictor(OnnxServingSettings(onnx_model=model))


def test_served_graph_holds_the_nchwc_layout_and_the_portable_graph_does_not(artifacts_dir) -> None:
    artifacts = json.loads((artifacts_dir / MANIFEST_FILE).read_text())["artifacts"]
    assert (artifacts[SERVED]["level"], artifacts[SERVED]["hardware_specific"]) == ("all", True)
    assert (artifacts[PORTABLE]["level"], artifacts[PORTABLE]["hardware_specific"]) == ("extended", False)
    assert artifacts[SERVED]["cpu_fingerprint"] == cpu_fingerprint()
    served_domains = {node.domain for node in onnx.load(artifacts_dir / SERVED).graph.node}
    portable_domains = {node.domain for node in onnx.load(artifacts_dir / PORTABLE).graph.node}
    assert NCHWC_DOMAIN in served_domains
    assert NCHWC_DOMAIN not in portable_domains


def test_predictor_serves_the_cpu_specific_graph_on_the_cpu_that_built_it(artifacts_dir) -> None:
    predictor = predictor_for(artifacts_dir / SERVED)
    predictor.load()
    runtime = predictor.describe()
    assert runtime["optimization_level"] == "all"
    assert runtime["hardware_specific"] is True
    assert runtime["artifact_sha256"] == sha256_of(artifacts_dir / SERVED)


def test_predictor_refuses_the_cpu_specific_graph_from_another_cpu(artifacts_dir, tmp_path) -> None:
    copy = other_cpu_copy(artifacts_dir, tmp_path / "artifacts")
    with pytest.raises(ModelLoadError) as refused:
        predictor_for(copy / SERVED).load()
    message = str(refused.value)
    assert "specific to the CPU" in message
    assert f"ONNX_MODEL=.../{PORTABLE}" in message and "make artifacts" in message
    assert f"missing here: {', '.join(FOREIGN_FLAGS)}" in message  # says which flags differ


def test_predictor_loads_the_portable_graph_whatever_cpu_built_it(artifacts_dir, tmp_path) -> None:
    copy = other_cpu_copy(artifacts_dir, tmp_path / "artifacts")
    portable = predictor_for(copy / PORTABLE)
    portable.load()
    assert portable.describe()["optimization_level"] == "extended"
    assert portable.describe()["hardware_specific"] is False
    served = predictor_for(artifacts_dir / SERVED)
    served.load()
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    # Same model, two layouts: the probabilities agree to float rounding.
    np.testing.assert_allclose(
        portable.predict([image]).probabilities, served.predict([image]).probabilities, atol=1e-5
    )


def test_predictor_refuses_a_cpu_specific_graph_that_has_no_manifest(artifacts_dir, tmp_path) -> None:
    copy = other_cpu_copy(artifacts_dir, tmp_path / "artifacts", with_manifest=False)
    with pytest.raises(ModelLoadError, match=r"no manifest\.json recording the CPU"):
        predictor_for(copy / SERVED).load()
    predictor_for(copy / PORTABLE).load()  # nothing CPU-specific in it, so no manifest is needed


@pytest.mark.live
def test_service_reports_the_refusal_and_serves_the_portable_graph(
    artifacts_dir, tmp_path, start_local_service
) -> None:
    copy = other_cpu_copy(artifacts_dir, tmp_path / "artifacts")
    refused = start_local_service(
        "onnx-other-cpu", "onnx_serving", env={"ONNX_MODEL": str(copy / SERVED)}, wait=False
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            info = httpx.get(f"{refused.base_url}/info", timeout=5).json()
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, refused.log_text()[-2000:]
            time.sleep(0.3)
    assert info["runtime"]["loaded"] is False
    assert PORTABLE in info["runtime"]["error"]
    assert httpx.get(f"{refused.base_url}/ready", timeout=5).status_code == 503

    portable = start_local_service("onnx-portable", "onnx_serving", env={"ONNX_MODEL": str(copy / PORTABLE)})
    runtime = httpx.get(f"{portable.base_url}/info", timeout=5).json()["runtime"]
    assert (runtime["optimization_level"], runtime["hardware_specific"]) == ("extended", False)
    assert runtime["artifact_sha256"] == sha256_of(artifacts_dir / PORTABLE)
    photo = (REPO_ROOT / "images" / "photo_small.jpg").read_bytes()
    response = httpx.post(
        f"{portable.base_url}/predict", content=photo, headers={"content-type": "image/jpeg"}, timeout=30
    )
    assert response.status_code == 200, response.text
