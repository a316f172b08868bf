"""Orchestration: checkpoint + card -> every artifact, validated, with a manifest, in one output directory.

The build happens in a staging directory beside ``out`` and replaces ``out`` only when complete, so a service
reloading from ``out`` never sees a half-written set of artifacts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import onnx

from artifact_contract import (
    CARD_FILE,
    CLASSIFIER_FILE,
    FUSED_FILE,
    INT8_FILE,
    OPTIMIZED_FILE,
    PORTABLE_FILE,
    VALIDATION_FILE,
)
from artifact_contract.manifest import Manifest
from artifact_contract.session import open_session
from model_zoo.card import ModelCard, card_path_for, sha256_of
from model_zoo.checkpoint import DEFAULT_CHECKPOINT, load_classifier
from onnx_graph_transform.export import export_classifier
from onnx_graph_transform.fuse import fuse_preprocessing
from onnx_graph_transform.manifest import build_manifest, write_json
from onnx_graph_transform.optimize import (
    DEFAULT_LEVEL,
    PORTABLE_LEVEL,
    OptimizationLevel,
    optimize_offline,
)
from onnx_graph_transform.quantize import quantize_classifier
from onnx_graph_transform.reference import reference_probabilities
from onnx_graph_transform.validate import heldout_images, memoized, validate_fp32, validate_int8

DEFAULT_IMAGES = Path(__file__).resolve().parents[1] / "images" / "digits"


@dataclass(frozen=True)
class BuildRequest:
    out: Path
    checkpoint: Path = DEFAULT_CHECKPOINT
    card: Path | None = None  # default: the card beside the checkpoint
    images: Path = DEFAULT_IMAGES
    quantize: bool = False
    level: OptimizationLevel = DEFAULT_LEVEL  # of the served artifact; the portable one is always extended

    @property
    def card_path(self) -> Path:
        return self.card or card_path_for(self.checkpoint)


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - started, 2)


def build(request: BuildRequest) -> Manifest:
    """Build, validate and publish the artifacts; returns the manifest (also written to ``out``)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    model, card = load_classifier(request.checkpoint, request.card_path)
    heldout = heldout_images(request.images)
    spec = card.preprocessing

    out = request.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    # mkdtemp makes the directory private (0700); the published artifacts must stay readable by non-root
    # services, such as containers that mount build/artifacts read-only.
    staging.chmod(0o755)
    try:
        with _timed(timings, "export"):
            export_classifier(model, staging / CLASSIFIER_FILE, spec.crop_size)
        with _timed(timings, "fuse"):
            onnx.save(
                fuse_preprocessing(onnx.load(str(staging / CLASSIFIER_FILE)), spec), staging / FUSED_FILE
            )
        with _timed(timings, "optimize"):
            optimization = optimize_offline(staging / FUSED_FILE, staging / OPTIMIZED_FILE, request.level)
            optimization["portable"] = optimize_offline(
                staging / FUSED_FILE, staging / PORTABLE_FILE, PORTABLE_LEVEL
            )
        shutil.copyfile(request.card_path, staging / CARD_FILE)

        # Both fp32 artifacts face the same gate; the torch side is computed once for the two.
        reference = memoized(lambda images: reference_probabilities(model, images, spec))
        fp32_session = open_session(staging / OPTIMIZED_FILE)
        with _timed(timings, "validate_fp32"):
            fp32 = validate_fp32(fp32_session, reference, heldout)
        with _timed(timings, "validate_portable"):
            portable = validate_fp32(open_session(staging / PORTABLE_FILE), reference, heldout)
        validation: dict[str, object] = {
            "heldout_source": heldout.source,
            "fp32": {"artifact": OPTIMIZED_FILE, **fp32},
            "portable": {"artifact": PORTABLE_FILE, **portable},
            "int8": None,
        }
        if request.quantize:
            with _timed(timings, "quantize"):
                optimization["int8"] = _build_int8(staging, card, request.level)
            with _timed(timings, "validate_int8"):
                int8 = validate_int8(open_session(staging / INT8_FILE), fp32_session, heldout)
            validation["int8"] = {"artifact": INT8_FILE, **int8}
        write_json(staging / VALIDATION_FILE, validation)
        timings["total"] = round(time.perf_counter() - started, 2)
        manifest = build_manifest(
            staging, card, sha256_of(request.card_path), request.checkpoint, optimization, validation, timings
        )
        manifest.write(staging)
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _build_int8(staging: Path, card: ModelCard, level: OptimizationLevel) -> dict[str, object]:
    """Quantize the raw classifier, then fuse and optimize it exactly like the fp32 one."""
    with tempfile.TemporaryDirectory(prefix="int8-") as scratch:
        quantized = Path(scratch) / "classifier.int8.onnx"
        fused = Path(scratch) / "fused.int8.onnx"
        quantize_classifier(staging / CLASSIFIER_FILE, quantized)
        onnx.save(fuse_preprocessing(onnx.load(str(quantized)), card.preprocessing), fused)
        return optimize_offline(fused, staging / INT8_FILE, level)


def _publish(staging: Path, out: Path) -> None:
    """Replace ``out`` with ``staging`` (two renames; the old directory is removed afterwards)."""
    retired = out.with_name(f".{out.name}.retired-{os.getpid()}")
    if out.exists():
        out.rename(retired)
    staging.rename(out)
    shutil.rmtree(retired, ignore_errors=True)
