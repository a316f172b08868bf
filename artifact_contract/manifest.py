"""``manifest.json``: what was built, from what, with which tools, and what may be served.

``serve`` and the per-artifact entries are the part services read (``ServedArtifact``): the fp32 and portable
artifacts are listed only if their parity gates passed, the int8 artifact only if it was built and accepted.
Each artifact records its ORT optimization ``level``, whether the saved graph is ``hardware_specific`` (holds
NCHWc layout nodes) and the build host's ``cpu_fingerprint``: a service refuses a hardware-specific artifact
on a CPU whose fingerprint differs. Everything else is provenance for people and reports, kept loosely typed
(``dict``) where it is the build's own report. Unknown keys are kept, so a newer manifest survives a
read-write round trip through an older model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from artifact_contract import MANIFEST_FILE
from artifact_contract.cpu import CpuFingerprint

MANIFEST_FORMAT = 1


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class ServedArtifact(BaseModel):
    """What a service reads about the artifact it is asked to load (every field may be absent)."""

    level: str | None = None  # ORT optimization level; None: not optimized by ORT
    hardware_specific: bool = False
    cpu_fingerprint: CpuFingerprint | None = None
    status: str | None = None  # "accepted" | "rejected"; None: no parity gate applies to this file


class ArtifactEntry(_Open):
    """One file of the build, as the build describes it (a superset of ``ServedArtifact``)."""

    role: str
    sha256: str
    bytes: int
    ir_version: int
    opset: dict[str, int]
    inputs: list[str]
    outputs: list[str]
    nodes: int
    node_counts: dict[str, int]
    level: str | None
    hardware_specific: bool
    cpu_fingerprint: CpuFingerprint
    status: str | None = None

    @model_serializer(mode="wrap")
    def _status_only_when_gated(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        document = handler(self)
        if document.get("status") is None:
            document.pop("status", None)
        return document


class ServeChoice(_Open):
    fp32: str | None
    portable: str | None
    int8: str | None


class ModelProvenance(_Open):
    name: str
    architecture: str
    num_classes: int
    checkpoint: str
    weights_sha256: str
    card_file: str
    card_sha256: str


class TensorSpec(_Open):
    name: str
    dtype: str
    shape: list[str | int]


class GraphInterface(_Open):
    input: TensorSpec
    output: TensorSpec


class ValidationGates(_Open):
    report: str
    fp32: dict[str, Any]
    portable: dict[str, Any] | None
    int8: dict[str, Any] | None


class BuildHost(_Open):
    cpu: CpuFingerprint
    platform: str


class Manifest(_Open):
    format: int = MANIFEST_FORMAT
    built_at: str
    build_seconds: float
    step_seconds: dict[str, float]
    serve: ServeChoice
    model: ModelProvenance
    interface: GraphInterface
    preprocessing: dict[str, Any]
    optimization: dict[str, Any]
    artifacts: dict[str, ArtifactEntry]
    validation: ValidationGates
    build_host: BuildHost
    versions: dict[str, str]

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        return cls.model_validate_json((Path(directory) / MANIFEST_FILE).read_bytes())

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path


def served_artifact(model_path: str | Path) -> ServedArtifact | None:
    """The entry of ``model_path`` in the ``manifest.json`` beside it (empty if unlisted); None without one.

    Only the entry is validated: a service needs no more of the manifest than the artifact it loads.
    """
    manifest_path = Path(model_path).with_name(MANIFEST_FILE)
    if not manifest_path.is_file():
        return None
    artifacts = json.loads(manifest_path.read_text()).get("artifacts", {})
    return ServedArtifact.model_validate(artifacts.get(Path(model_path).name, {}))
