"""The whole build through the CLI on a small MobileNetV3: artifacts, manifest, validation, summary."""

from __future__ import annotations

import json
import platform

import onnx
import pytest
import torch
from PIL import Image

from artifact_contract import (
    CARD_FILE,
    CLASSIFIER_FILE,
    FUSED_FILE,
    INT8_FILE,
    MANIFEST_FILE,
    NCHWC_DOMAIN,
    OPTIMIZED_FILE,
    PORTABLE_FILE,
    VALIDATION_FILE,
)
from artifact_contract.cpu import cpu_fingerprint
from model_zoo.card import ModelCard, sha256_of
from model_zoo.checkpoint import CheckpointError, load_classifier
from model_zoo.mobilenet_v3 import mobilenet_v3_small
from onnx_graph_transform.__main__ import main
from onnx_graph_transform.build import BuildRequest, _publish, build
from onnx_graph_transform.speed import (
    RESIZE_ALTERNATIVE,
    TORCH_VARIANT,
    measure_speed,
    render_speed,
    speed_inputs,
)

from .conftest import SMALL_SPEC, random_images


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A random-weight MobileNetV3-small checkpoint, its card (small preprocessing) and four held-out PNGs."""
    root = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    checkpoint = root / "tiny.pt"
    torch.save(mobilenet_v3_small(num_classes=10).state_dict(), checkpoint)
    card = ModelCard(
        name="tiny",
        architecture="mobilenet_v3_small",
        num_classes=10,
        labels=[str(digit) for digit in range(10)],
        preprocessing=SMALL_SPEC,
        weights_file=checkpoint.name,
        weights_sha256=sha256_of(checkpoint),
    )
    card.save(root / "tiny.card.json")
    images = root / "images"
    images.mkdir()
    entries = []
    for index, (height, width) in enumerate([(40, 52), (61, 40), (45, 45), (90, 70)]):
        Image.fromarray(random_images(1, height, width, seed=index)[0]).save(images / f"{index:05d}.png")
        entries.append({"file": f"{index:05d}.png", "label": index, "label_name": str(index)})
    (images / "manifest.json").write_text(json.dumps({"images": entries}))
    return checkpoint, root / "tiny.card.json", images


@pytest.fixture(scope="module")
def built(tmp_path_factory, model_files):
    checkpoint, _card, images = model_files
    out = tmp_path_factory.mktemp("build") / "artifacts"
    code = main(
        ["build", "--out", str(out), "--checkpoint", str(checkpoint), "--images", str(images), "--quantize"]
    )
    return code, out


@pytest.mark.slow
def test_build_writes_every_artifact_with_a_truthful_manifest(built, model_files) -> None:
    code, out = built
    checkpoint, card, _images = model_files
    assert code == 0
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert set(manifest["artifacts"]) == {
        CLASSIFIER_FILE,
        FUSED_FILE,
        OPTIMIZED_FILE,
        PORTABLE_FILE,
        INT8_FILE,
    }
    for name, artifact in manifest["artifacts"].items():
        assert artifact["sha256"] == sha256_of(out / name)
        assert artifact["bytes"] == (out / name).stat().st_size
        assert artifact["opset"]["ai.onnx"] >= 18
        assert artifact["nodes"] == sum(artifact["node_counts"].values())
    assert manifest["artifacts"][OPTIMIZED_FILE]["inputs"] == ["image"]
    assert manifest["artifacts"][OPTIMIZED_FILE]["outputs"] == ["probabilities"]
    assert sha256_of(out / CARD_FILE) == sha256_of(card) == manifest["model"]["card_sha256"]
    assert manifest["model"]["weights_sha256"] == sha256_of(checkpoint)
    assert manifest["optimization"]["level"] == "all"
    assert manifest["optimization"]["portable"]["level"] == "extended"
    assert manifest["optimization"]["int8"]["level"] == "all"
    assert {"torch", "onnx", "onnxruntime", "onnxscript"} <= set(manifest["versions"])
    assert manifest["build_seconds"] == manifest["step_seconds"]["total"] > 0
    assert {
        "export",
        "fuse",
        "optimize",
        "validate_fp32",
        "validate_portable",
        "quantize",
        "validate_int8",
    } < set(manifest["step_seconds"])
    assert not [path for path in out.parent.iterdir() if path.name.startswith(".")], "staging left behind"


@pytest.mark.slow
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="NCHWc layout is x86-only")
def test_manifest_marks_the_served_artifact_cpu_specific_and_the_portable_one_not(built) -> None:
    _code, out = built
    artifacts = json.loads((out / MANIFEST_FILE).read_text())["artifacts"]
    served, portable = artifacts[OPTIMIZED_FILE], artifacts[PORTABLE_FILE]
    assert (served["level"], served["hardware_specific"]) == ("all", True)
    assert (portable["level"], portable["hardware_specific"]) == ("extended", False)
    assert served["cpu_fingerprint"] == portable["cpu_fingerprint"] == cpu_fingerprint()
    assert served["cpu_fingerprint"]["isa"], "the build host's ISA flags were not read"
    # The flag is read from the graph: NCHWc nodes are in the served file and absent from the portable one.
    assert any(op.startswith(f"{NCHWC_DOMAIN}.") for op in served["node_counts"])
    assert not any(NCHWC_DOMAIN in op for op in portable["node_counts"])
    assert {node.domain for node in onnx.load(out / OPTIMIZED_FILE).graph.node} >= {NCHWC_DOMAIN}
    assert NCHWC_DOMAIN not in {node.domain for node in onnx.load(out / PORTABLE_FILE).graph.node}
    # ConvInteger is not rewritten into NCHWc, so the int8 graph built at `all` runs on any CPU.
    assert (artifacts[INT8_FILE]["level"], artifacts[INT8_FILE]["hardware_specific"]) == ("all", False)
    assert artifacts[FUSED_FILE]["level"] is None and artifacts[FUSED_FILE]["hardware_specific"] is False


@pytest.mark.slow
def test_build_validates_and_decides_what_is_served(built) -> None:
    _code, out = built
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    validation = json.loads((out / VALIDATION_FILE).read_text())
    assert validation["fp32"]["heldout"]["images"] == 4
    assert validation["fp32"]["gate"]["passed"] is True
    assert validation["portable"]["artifact"] == PORTABLE_FILE
    assert validation["portable"]["heldout"]["images"] == 4
    assert validation["portable"]["gate"]["passed"] is True
    assert manifest["serve"]["fp32"] == OPTIMIZED_FILE
    assert manifest["serve"]["portable"] == PORTABLE_FILE
    int8_status = manifest["artifacts"][INT8_FILE]["status"]
    assert int8_status == validation["int8"]["gate"]["status"] in ("accepted", "rejected")
    assert manifest["serve"]["int8"] == (INT8_FILE if int8_status == "accepted" else None)


@pytest.mark.slow
def test_summary_exit_code_follows_the_fp32_gate(built, tmp_path, capsys) -> None:
    _code, out = built
    assert main(["summary", "--out", str(out)]) == 0
    assert "PASSED" in capsys.readouterr().out
    failed = tmp_path / "failed"
    failed.mkdir()
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["validation"]["fp32"]["passed"] = False
    (failed / MANIFEST_FILE).write_text(json.dumps(manifest))
    validation = json.loads((out / VALIDATION_FILE).read_text())
    validation["fp32"]["gate"]["passed"] = False
    (failed / VALIDATION_FILE).write_text(json.dumps(validation))
    assert main(["summary", "--out", str(failed)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["summary", "--out", str(tmp_path / "missing")]) == 2


def test_build_refuses_a_checkpoint_its_card_does_not_describe(tmp_path, model_files) -> None:
    checkpoint, card, images = model_files
    other = tmp_path / "other.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["classifier.3.bias"] = state["classifier.3.bias"] + 1.0
    torch.save(state, other)
    with pytest.raises(CheckpointError, match="sha256"):
        build(BuildRequest(out=tmp_path / "out", checkpoint=other, card=card, images=images))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_published_artifacts_are_readable_by_other_users(built) -> None:
    """Containers running as another user mount build/artifacts read-only."""
    _code, out = built
    assert out.stat().st_mode & 0o005 == 0o005
    assert all(path.stat().st_mode & 0o004 for path in out.iterdir())


def test_publish_replaces_the_previous_build_whole(tmp_path) -> None:
    out, staging = tmp_path / "artifacts", tmp_path / "staging"
    out.mkdir()
    (out / "stale.onnx").write_bytes(b"old")
    staging.mkdir()
    (staging / MANIFEST_FILE).write_text("{}")
    _publish(staging, out)
    assert sorted(path.name for path in out.iterdir()) == [MANIFEST_FILE]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["artifacts"]
    assert (out / MANIFEST_FILE).read_text() == "{}"


@pytest.mark.slow
def test_speed_times_both_artifacts_and_torch_after_checking_their_outputs(built, model_files) -> None:
    _code, out = built
    checkpoint, card_path, _images = model_files
    model, card = load_classifier(checkpoint, card_path)
    inputs = speed_inputs(photo=None)
    medians = measure_speed(out, model, card.preprocessing, inputs, runs=2)
    assert set(medians) == {"640x480", "224x224"}
    for by_variant in medians.values():
        assert list(by_variant) == [
            f"{OPTIMIZED_FILE} (served)",
            f"{PORTABLE_FILE} (portable)",
            RESIZE_ALTERNATIVE,
            TORCH_VARIANT,
        ]
        assert all(ms > 0 for ms in by_variant.values())
    assert "224x224" in render_speed(medians, runs=2)
    with torch.no_grad():  # a different model: the artifacts no longer match it
        model.classifier[-1].bias.add_(torch.arange(10.0))
    with pytest.raises(AssertionError, match="differs from the reference"):
        measure_speed(out, model, card.preprocessing, inputs, runs=1)
