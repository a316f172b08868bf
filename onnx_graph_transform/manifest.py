"""Builds the ``manifest.json`` of a build directory (``artifact_contract.manifest.Manifest`` says what each
key means and is what readers load).
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from artifact_contract import (
    CARD_FILE,
    CLASSIFIER_FILE,
    FUSED_FILE,
    IMAGE_INPUT,
    INT8_FILE,
    OPTIMIZED_FILE,
    PORTABLE_FILE,
    PROBABILITIES_OUTPUT,
    VALIDATION_FILE,
)
from artifact_contract.cpu import cpu_fingerprint
from artifact_contract.manifest import (
    ArtifactEntry,
    BuildHost,
    GraphInterface,
    Manifest,
    ModelProvenance,
    ServeChoice,
    TensorSpec,
    ValidationGates,
)
from model_zoo.card import ModelCard
from onnx_graph_transform.graph_info import describe_file

TOOLS = ("torch", "onnx", "onnxruntime", "onnxscript", "numpy", "pillow")
ROLES = {
    CLASSIFIER_FILE: "raw export: float NCHW input, logits output",
    FUSED_FILE: "preprocessing + classifier + softmax, not optimized",
    OPTIMIZED_FILE: "the fp32 artifact to serve on the build host's CPU (load with optimizations disabled)",
    PORTABLE_FILE: "the fp32 artifact for other CPUs: no hardware-specific layout, slower",
    INT8_FILE: "dynamically quantized int8 artifact (served only if accepted)",
}


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for tool in TOOLS:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            versions[tool] = "not installed"
    return versions


def build_manifest(
    out: Path,
    card: ModelCard,
    card_sha256: str,
    checkpoint: Path,
    optimization: dict[str, Any],
    validation: dict[str, Any],
    step_seconds: dict[str, float],
) -> Manifest:
    fp32_gate = validation["fp32"]["gate"]
    portable_gate = validation["portable"]["gate"]
    int8 = validation.get("int8")
    statuses = {
        OPTIMIZED_FILE: "accepted" if fp32_gate["passed"] else "rejected",
        PORTABLE_FILE: "accepted" if portable_gate["passed"] else "rejected",
    }
    if int8 is not None:
        statuses[INT8_FILE] = int8["gate"]["status"]
    reports = {
        OPTIMIZED_FILE: optimization,
        PORTABLE_FILE: optimization.get("portable"),
        INT8_FILE: optimization.get("int8"),
    }
    build_cpu = cpu_fingerprint()
    artifacts = {}
    for name, role in ROLES.items():
        if (out / name).exists():
            report = reports.get(name) or {}
            artifacts[name] = ArtifactEntry(
                role=role,
                **describe_file(out / name),
                level=report.get("level"),
                hardware_specific=bool(report.get("hardware_specific", False)),
                cpu_fingerprint=build_cpu,
                status=statuses.get(name),
            )
    return Manifest(
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=step_seconds["total"],
        step_seconds=step_seconds,
        serve=ServeChoice(
            fp32=OPTIMIZED_FILE if statuses[OPTIMIZED_FILE] == "accepted" else None,
            portable=PORTABLE_FILE if statuses[PORTABLE_FILE] == "accepted" else None,
            int8=INT8_FILE if statuses.get(INT8_FILE) == "accepted" else None,
        ),
        model=ModelProvenance(
            name=card.name,
            architecture=card.architecture,
            num_classes=card.num_classes,
            checkpoint=checkpoint.name,
            weights_sha256=card.weights_sha256,
            card_file=CARD_FILE,
            card_sha256=card_sha256,
        ),
        interface=GraphInterface(
            input=TensorSpec(name=IMAGE_INPUT, dtype="uint8", shape=["batch", "height", "width", 3]),
            output=TensorSpec(name=PROBABILITIES_OUTPUT, dtype="float32", shape=["batch", card.num_classes]),
        ),
        preprocessing=card.preprocessing.model_dump(mode="json"),
        optimization=optimization,
        artifacts=artifacts,
        validation=ValidationGates(
            report=VALIDATION_FILE,
            fp32=fp32_gate,
            portable=portable_gate,
            int8=int8["gate"] if int8 is not None else None,
        ),
        build_host=BuildHost(cpu=build_cpu, platform=platform.platform()),
        versions=tool_versions(),
    )


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")
