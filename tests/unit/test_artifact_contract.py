"""artifact_contract: the CPU fingerprint read from /proc/cpuinfo text and the comparison that guards
CPU-specific artifacts; the manifest model, read and written with the keys its readers rely on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from artifact_contract import MANIFEST_FILE, OPTIMIZED_FILE, PORTABLE_FILE
from artifact_contract.cpu import cpu_fingerprint, fingerprint_mismatch
from artifact_contract.manifest import ArtifactEntry, Manifest, served_artifact

REPO_ROOT = Path(__file__).resolve().parents[2]
# The keys users' scripts and the services read; a rename or a dropped key must fail here.
MANIFEST_KEYS = [
    "format",
    "built_at",
    "build_seconds",
    "step_seconds",
    "serve",
    "model",
    "interface",
    "preprocessing",
    "optimization",
    "artifacts",
    "validation",
    "build_host",
    "versions",
]
ARTIFACT_KEYS = [
    "role",
    "sha256",
    "bytes",
    "ir_version",
    "opset",
    "inputs",
    "outputs",
    "nodes",
    "node_counts",
    "level",
    "hardware_specific",
    "cpu_fingerprint",
]

X86_CPUINFO = """processor\t: 0
model name\t: Some CPU
flags\t\t: fpu sse sse2 sse4_1 avx avx2 fma hypervisor avx512f avx512bw avx512vl avx512_vnni pku
processor\t: 1
flags\t\t: fpu sse sse2 sse4_1 avx avx2 fma hypervisor avx512f avx512bw avx512vl avx512_vnni pku
"""
ARM_CPUINFO = """processor\t: 0
Features\t: fp asimd evtstrm aes crc32 asimddp sve i8mm
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_x86_fingerprint_keeps_only_the_kernel_deciding_flags(tmp_path) -> None:
    fingerprint = cpu_fingerprint(write(tmp_path, X86_CPUINFO))
    assert fingerprint["isa"] == sorted(
        ["sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"]
    )
    assert fingerprint["source"].endswith("cpuinfo")


def test_arm_features_line_is_read(tmp_path) -> None:
    assert cpu_fingerprint(write(tmp_path, ARM_CPUINFO))["isa"] == ["asimd", "asimddp", "i8mm", "sve"]


@pytest.mark.parametrize("text", [None, "processor\t: 0\nmodel name\t: no flag line\n"])
def test_unreadable_cpuinfo_gives_unknown_isa(tmp_path, text) -> None:
    path = write(tmp_path, text) if text is not None else tmp_path / "missing"
    fingerprint = cpu_fingerprint(path)
    assert fingerprint["isa"] is None and fingerprint["source"] == "unavailable"
    assert fingerprint["machine"]


def test_this_machine_matches_itself() -> None:
    assert fingerprint_mismatch(cpu_fingerprint(), cpu_fingerprint()) is None


def test_mismatches_name_the_difference(tmp_path) -> None:
    built = cpu_fingerprint(write(tmp_path, X86_CPUINFO))
    avx2_only = {**built, "isa": ["avx", "avx2", "fma", "sse4_1"]}
    reason = fingerprint_mismatch(built, avx2_only)
    assert reason is not None and "missing here" in reason and "avx512f" in reason
    reason = fingerprint_mismatch(avx2_only, built)
    assert reason is not None and "extra here" in reason and "avx512_vnni" in reason
    assert "aarch64" in str(fingerprint_mismatch(built, {**built, "machine": "aarch64"}))
    assert "unknown" in str(fingerprint_mismatch(built, {**built, "isa": None}))
    assert "no CPU fingerprint" in str(fingerprint_mismatch(None, built))


def _entry(**overrides: Any) -> ArtifactEntry:
    fields: dict[str, Any] = {
        "role": "served",
        "sha256": "ab" * 32,
        "bytes": 10,
        "ir_version": 10,
        "opset": {"ai.onnx": 18},
        "inputs": ["image"],
        "outputs": ["probabilities"],
        "nodes": 3,
        "node_counts": {"Cast": 1, "Softmax": 2},
        "level": "all",
        "hardware_specific": True,
        "cpu_fingerprint": {"machine": "x86_64", "isa": ["avx2"], "source": "/proc/cpuinfo"},
    }
    return ArtifactEntry(**{**fields, **overrides})


def _manifest() -> Manifest:
    gate = {"rule": "r", "max_abs_delta": 0.0, "top1_agreement": 1.0, "passed": True}
    fingerprint = {"machine": "x86_64", "isa": ["avx2"], "source": "/proc/cpuinfo"}
    return Manifest.model_validate(
        {
            "built_at": "2026-01-01T00:00:00+00:00",
            "build_seconds": 1.5,
            "step_seconds": {"export": 1.0, "total": 1.5},
            "serve": {"fp32": OPTIMIZED_FILE, "portable": PORTABLE_FILE, "int8": None},
            "model": {
                "name": "m",
                "architecture": "a",
                "num_classes": 10,
                "checkpoint": "m.pt",
                "weights_sha256": "cd" * 32,
                "card_file": "model.card.json",
                "card_sha256": "ef" * 32,
            },
            "interface": {
                "input": {"name": "image", "dtype": "uint8", "shape": ["batch", "height", "width", 3]},
                "output": {"name": "probabilities", "dtype": "float32", "shape": ["batch", 10]},
            },
            "preprocessing": {"resize_size": 64, "crop_size": 56},
            "optimization": {"level": "all", "nodes_before": 9, "nodes_after": 3},
            "artifacts": {
                OPTIMIZED_FILE: _entry(status="accepted"),
                "fused.onnx": _entry(level=None, hardware_specific=False),
            },
            "validation": {"report": "validation.json", "fp32": gate, "portable": gate, "int8": None},
            "build_host": {"cpu": fingerprint, "platform": "Linux"},
            "versions": {"python": "3.11"},
        }
    )


def test_manifest_is_written_with_the_keys_readers_rely_on_and_read_back_equal(tmp_path) -> None:
    path = _manifest().write(tmp_path)
    assert path == tmp_path / MANIFEST_FILE
    document = json.loads(path.read_text())
    assert list(document) == MANIFEST_KEYS
    assert document["format"] == 1
    assert list(document["artifacts"][OPTIMIZED_FILE]) == [*ARTIFACT_KEYS, "status"]
    # An artifact no gate judged has no status key at all (readers test `"status" in entry`).
    assert list(document["artifacts"]["fused.onnx"]) == ARTIFACT_KEYS
    assert document["interface"]["input"]["shape"] == ["batch", "height", "width", 3]
    assert Manifest.read(tmp_path) == _manifest()
    assert Manifest.read(tmp_path).model_dump(mode="json") == document


def test_unknown_keys_survive_a_read_write_round_trip(tmp_path) -> None:
    document = _manifest().model_dump(mode="json")
    document["added_later"] = {"x": 1}
    document["artifacts"][OPTIMIZED_FILE]["extra"] = "kept"
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(document))
    Manifest.read(tmp_path).write(tmp_path / ".." / tmp_path.name)
    assert json.loads((tmp_path / MANIFEST_FILE).read_text()) == document


def test_a_manifest_missing_what_the_build_always_writes_is_refused(tmp_path) -> None:
    document = _manifest().model_dump(mode="json")
    del document["serve"]
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(document))
    with pytest.raises(ValueError, match="serve"):
        Manifest.read(tmp_path)


def test_the_service_reads_only_its_artifact_entry(tmp_path) -> None:
    model = tmp_path / OPTIMIZED_FILE
    assert served_artifact(model) is None  # no manifest beside it
    # Only the served artifact's entry matters to a service: the rest may be anything.
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"artifacts": {OPTIMIZED_FILE: {"status": "rejected"}}}))
    entry = served_artifact(model)
    assert entry is not None and entry.status == "rejected"
    assert (entry.hardware_specific, entry.cpu_fingerprint, entry.level) == (False, None, None)
    unlisted = served_artifact(tmp_path / PORTABLE_FILE)
    assert unlisted is not None and unlisted.status is None and not unlisted.hardware_specific
    _manifest().write(tmp_path)
    entry = served_artifact(model)
    assert entry is not None and entry.hardware_specific and entry.cpu_fingerprint is not None
    assert entry.cpu_fingerprint["isa"] == ["avx2"]


def test_the_real_build_manifest_round_trips_byte_for_byte() -> None:
    artifacts = REPO_ROOT / "build" / "artifacts"
    if not (artifacts / MANIFEST_FILE).is_file():
        pytest.skip("no build/artifacts: run `make artifacts`")
    text = (artifacts / MANIFEST_FILE).read_text()
    assert json.dumps(Manifest.read(artifacts).model_dump(mode="json"), indent=2) + "\n" == text
