"""The approximation gates of a variant that declares ``approximates``, in process, in every profile.

The held-out digits are rendered once as photo-sized JPEGs (``jpeg_digits``) into a temporary folder; the
exact variant and the approximation then each predict every one of them in a child process of their own,
in their own environment (``launch.run_inprocess``: the variant's ``[variant.local]`` env, so onnx decodes
with JPEG_DRAFT off and onnx-fast with it on), pinned like the other in-process jobs. Both gates come from
those real predictions (``bench.analysis.approximation``).

Writes ``raw/<variant>/analysis/approximation/{exact,approximate}/jpeg_predictions.json`` (every probability
vector) and ``raw/<variant>/analysis/approximation.json`` (the gates, what the report reads).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.analysis.approximation import GATES_FILE, ApproximationGates, PathResult, Rendering, gate_record
from bench.collectors.accuracy import DEFAULT_MANIFEST
from bench.inprocess.jpeg_digits import (
    DEFAULT_QUALITY,
    DEFAULT_SHORT_SIDE,
    RESAMPLING,
    labelled_jpegs,
    manifest_entries,
    write_jpeg_set,
)
from bench.inprocess.launch import run_inprocess
from bench.inprocess.predictions import Predictions
from bench.payloads import Payload
from bench.registry import RegistryError, Variant
from bench.results import RunDir, is_not_measured, not_measured, write_json

PREDICTIONS_JOB = "jpeg_predictions"
PREDICTIONS_DIR = "approximation"  # raw/<variant>/analysis/<this>/<role>/jpeg_predictions.json
ROLES = ("exact", "approximate")


def approximating(variants: list[Variant]) -> list[Variant]:
    """The variants the gates run for: those that declare what they approximate."""
    return [variant for variant in variants if variant.approximates is not None]


def exact_variant_of(variant: Variant, registry: list[Variant]) -> Variant:
    """The registered variant ``variant`` approximates (it need not be among the variants being compared)."""
    found = [candidate for candidate in registry if candidate.name == variant.approximates]
    if not found:
        raise RegistryError(f"{variant.name}: approximates {variant.approximates!r}, which is not registered")
    return found[0]


def path_result(variant: Variant, job: dict[str, Any]) -> PathResult:
    return PathResult(
        variant=variant.name,
        jpeg_draft=job.get("jpeg_draft"),
        draft_min_side=job.get("draft_min_side"),
        decode_ms_p50=job.get("decode_ms_p50"),
        total_ms_p50=job.get("total_ms_p50"),
    )


def _not_measured(gates_file: Path, reason: str) -> dict[str, Any]:
    write_json(gates_file, not_measured(reason))
    return not_measured(reason)


def run_approximation_gates(
    variant: Variant,
    registry: list[Variant],
    payload: Payload,
    run_dir: RunDir,
    cores: list[int] | None,
    *,
    manifest: Path = DEFAULT_MANIFEST,
    short_side: int = DEFAULT_SHORT_SIDE,
    quality: int = DEFAULT_QUALITY,
    limit: int | None = None,
) -> ApproximationGates | dict[str, Any]:
    """Both paths over the same JPEGs, then the gates; the record (or why it was not measured) is written
    to ``raw/<variant>/analysis/approximation.json`` and returned."""
    out_dir = run_dir.analysis_dir(variant.name)
    gates_file = out_dir / GATES_FILE
    if not manifest.is_file():
        return _not_measured(gates_file, f"{manifest} missing (run `make images`)")
    exact = exact_variant_of(variant, registry)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-jpeg-set-") as folder:
        jpegs = labelled_jpegs(manifest, short_side, quality, limit)
        render_seconds = time.perf_counter() - started
        params = {"jpeg_set": str(write_jpeg_set(jpegs, Path(folder)))}
        jobs = {
            role: run_inprocess(
                PREDICTIONS_JOB, path, payload, out_dir / PREDICTIONS_DIR / role, cores, params
            )
            for role, path in zip(ROLES, (exact, variant), strict=True)
        }
    unmeasured = [f"{role}: {job['reason']}" for role, job in jobs.items() if is_not_measured(job)]
    if unmeasured:
        return _not_measured(gates_file, "; ".join(unmeasured))
    passes = {role: Predictions.from_dict(job) for role, job in jobs.items()}
    if passes["exact"].files != passes["approximate"].files:
        raise RuntimeError(f"{variant.name}: the two paths predicted different images")
    record = gate_record(
        variant.name,
        path_result(exact, jobs["exact"]),
        path_result(variant, jobs["approximate"]),
        Rendering(
            manifest=str(manifest),
            short_side=short_side,
            quality=quality,
            resampling=RESAMPLING,
            images=len(jpegs),
            of=len(manifest_entries(manifest)),
        ),
        passes["exact"].files,
        passes["exact"].labels,
        passes["exact"].matrix,
        passes["approximate"].matrix,
    )
    record = record.model_copy(
        update={"render_seconds": render_seconds, "seconds": time.perf_counter() - started}
    )
    write_json(gates_file, record.model_dump(mode="json"))
    return record
