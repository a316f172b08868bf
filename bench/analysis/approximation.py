"""Is an approximate variant close enough to the exact one it approximates? Two gates on top-1, from real
predictions of the same images by both paths.

Gate 1 (accuracy): the approximation's top-1 accuracy is at least ``ACCURACY_RATIO_MIN`` of the exact one's.
Gate 2 (agreement): the two paths pick the same top-1 class on at least ``AGREEMENT_MIN`` of the images.
The largest change of any class probability is reported for information, not gated.

``ApproximationGates`` is the record the compare run writes (``raw/<variant>/analysis/approximation.json``)
and the report reads; ``compare_predictions`` also compares the JPEG_DRAFT analysis's off and on passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

ACCURACY_RATIO_MIN = 0.99  # gate 1: approximate top-1 >= 99% of the exact top-1
AGREEMENT_MIN = 0.99  # gate 2: top-1 agreement >= 99%
CHANGED_LISTED = 20  # images whose top-1 changed, listed in the record
GATES_FILE = "approximation.json"  # the record: raw/<variant>/analysis/<this>


@dataclass(frozen=True)
class Comparison:
    """Two probability matrices of the same labelled images: each top-1, their agreement, the changes."""

    images: int
    top1_reference: float
    top1_other: float
    agreement: float
    max_abs_delta_p: float
    mean_abs_delta_p_top1: float
    changed: list[int]  # indices of the images whose top-1 class differs
    top_reference: list[int]
    top_other: list[int]


def compare_predictions(labels: Sequence[int], reference: np.ndarray, other: np.ndarray) -> Comparison:
    """``reference`` and ``other``: ``[images, classes]`` probabilities of the images labelled ``labels``."""
    truth = np.asarray(labels)
    if reference.shape != other.shape or reference.shape[0] != truth.shape[0] or truth.size == 0:
        shapes = f"{reference.shape} and {other.shape}"
        raise ValueError(f"cannot compare predictions of shapes {shapes} for {truth.size} labels")
    top_reference, top_other = reference.argmax(axis=1), other.argmax(axis=1)
    return Comparison(
        images=int(truth.size),
        top1_reference=float(np.mean(top_reference == truth)),
        top1_other=float(np.mean(top_other == truth)),
        agreement=float(np.mean(top_reference == top_other)),
        max_abs_delta_p=float(np.max(np.abs(other - reference))),
        mean_abs_delta_p_top1=float(np.mean(np.abs(other.max(axis=1) - reference.max(axis=1)))),
        changed=[int(index) for index in np.flatnonzero(top_reference != top_other)],
        top_reference=[int(top) for top in top_reference],
        top_other=[int(top) for top in top_other],
    )


# --- the record --------------------------------------------------------------------------------------


class GateName(StrEnum):
    ACCURACY = "accuracy"
    AGREEMENT = "agreement"


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Gate(_Record):
    name: GateName
    value: float  # accuracy: approximate top-1 / exact top-1; agreement: the fraction of equal top-1
    threshold: float
    passed: bool


class Rendering(_Record):
    """How the images both paths predicted were made (``bench.inprocess.jpeg_digits``)."""

    manifest: str
    short_side: int
    quality: int
    resampling: str = "LANCZOS"
    images: int
    of: int  # images in the manifest; ``images`` of them, spread evenly, were rendered


class PathResult(_Record):
    """One variant's path over the images: its decode setting and per-image times (medians)."""

    variant: str
    jpeg_draft: bool | None = None
    draft_min_side: int | None = None
    decode_ms_p50: float | None = None
    total_ms_p50: float | None = None


class ChangedImage(_Record):
    file: str
    label: int
    exact: int
    approximate: int


class ApproximationGates(_Record):
    variant: str
    exact: str
    rendering: Rendering
    exact_path: PathResult
    approximate_path: PathResult
    top1_exact: float
    top1_approximate: float
    agreement: float
    max_abs_delta_p: float
    gates: list[Gate]
    changed: list[ChangedImage] = Field(default_factory=list)
    render_seconds: float | None = None  # making the JPEGs, once for both paths
    seconds: float | None = None  # the whole step: rendering and both paths' processes

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    def gate(self, name: GateName) -> Gate:
        return next(gate for gate in self.gates if gate.name is name)


def accuracy_ratio(top1_approximate: float, top1_exact: float) -> float:
    """The approximation's top-1 as a fraction of the exact one's (1 when the exact one gets none right)."""
    return top1_approximate / top1_exact if top1_exact > 0 else 1.0


def evaluate_gates(
    comparison: Comparison,
    accuracy_min: float = ACCURACY_RATIO_MIN,
    agreement_min: float = AGREEMENT_MIN,
) -> list[Gate]:
    """Both gates of a comparison whose reference is the exact path and whose other is the approximation."""
    ratio = accuracy_ratio(comparison.top1_other, comparison.top1_reference)
    return [
        Gate(name=GateName.ACCURACY, value=ratio, threshold=accuracy_min, passed=ratio >= accuracy_min),
        Gate(
            name=GateName.AGREEMENT,
            value=comparison.agreement,
            threshold=agreement_min,
            passed=comparison.agreement >= agreement_min,
        ),
    ]


def gate_record(
    variant: str,
    exact_path: PathResult,
    approximate_path: PathResult,
    rendering: Rendering,
    files: Sequence[str],
    labels: Sequence[int],
    exact: np.ndarray,
    approximate: np.ndarray,
) -> ApproximationGates:
    """The record of both gates from the two paths' probabilities of the same images."""
    comparison = compare_predictions(labels, exact, approximate)
    return ApproximationGates(
        variant=variant,
        exact=exact_path.variant,
        rendering=rendering,
        exact_path=exact_path,
        approximate_path=approximate_path,
        top1_exact=comparison.top1_reference,
        top1_approximate=comparison.top1_other,
        agreement=comparison.agreement,
        max_abs_delta_p=comparison.max_abs_delta_p,
        gates=evaluate_gates(comparison),
        changed=[
            ChangedImage(
                file=files[index],
                label=int(labels[index]),
                exact=comparison.top_reference[index],
                approximate=comparison.top_other[index],
            )
            for index in comparison.changed[:CHANGED_LISTED]
        ],
    )
