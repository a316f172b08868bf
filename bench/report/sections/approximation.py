"""Approximation gates: each variant that declares ``approximates`` against the exact variant it
approximates, from real predictions of the held-out digits rendered as photo-sized JPEGs
(``bench.inprocess.approximation``).

Only the approximating variant's column holds figures; a failed gate is an error flag (FAILED in its cell and
under the report's Flags).
"""

from __future__ import annotations

from bench.analysis.approximation import (
    ACCURACY_RATIO_MIN,
    AGREEMENT_MIN,
    ApproximationGates,
    Gate,
    GateName,
    PathResult,
)
from bench.records import RunRecords, VariantRecords
from bench.report.flags import Flag, FlagCode, Severity, info
from bench.report.sections.common import missing
from bench.report.table import Cell, Row

SECTION = "Approximation gates"
GATE_NUMBERS = {GateName.ACCURACY: 1, GateName.AGREEMENT: 2}
ROWS: list[tuple[str, str, str]] = [  # key, label, unit
    ("approximation.images", "images predicted by both paths (the same JPEG bytes)", "images"),
    ("approximation.top1_exact", "top-1 on the JPEG digits, the exact variant's path", "%"),
    ("approximation.top1", "top-1 on the JPEG digits, this variant's path", "%"),
    (
        "approximation.gate.accuracy",
        f"gate 1: top-1 / the exact variant's top-1 (passes at >= {ACCURACY_RATIO_MIN:.0%})",
        "%",
    ),
    (
        "approximation.gate.agreement",
        f"gate 2: top-1 agreement with the exact variant (passes at >= {AGREEMENT_MIN:.0%})",
        "%",
    ),
    ("approximation.max_delta_p", "max abs(delta p) vs the exact path (any image, any class; not gated)", ""),
    ("approximation.total_exact", "decode + predict p50 per JPEG digit, the exact variant's path", "ms"),
    ("approximation.total", "decode + predict p50 per JPEG digit, this variant's path", "ms"),
    ("approximation.verdict", "approximation gates", ""),
]


def pairs(run: RunRecords) -> dict[str, str]:
    """Approximating variant -> the exact variant, as run.json recorded the registry entries."""
    found = {}
    for entry in run.info.variants:
        exact = getattr(entry, "approximates", None)
        if isinstance(exact, str):
            found[entry.name] = exact
    for name, records in run.variants.items():
        if isinstance(records.approximation, ApproximationGates):
            found.setdefault(name, records.approximation.exact)
    return found


def path_text(path: PathResult) -> str:
    if path.jpeg_draft is None:
        return path.variant
    draft = f"JPEG_DRAFT on (>= {path.draft_min_side} px)" if path.jpeg_draft else "JPEG_DRAFT off"
    return f"{path.variant}: {draft}"


def gate_flag(record: ApproximationGates, gate: Gate) -> Flag:
    number = GATE_NUMBERS[gate.name]
    if gate.passed:
        return info(FlagCode.APPROXIMATION_GATE, "passed")
    if gate.name is GateName.ACCURACY:
        detail = (
            f"top-1 {record.top1_approximate:.1%} is {gate.value:.1%} of {record.exact}'s"
            f" {record.top1_exact:.1%}, below {gate.threshold:.0%}"
        )
    else:
        changed = round((1.0 - gate.value) * record.rendering.images)
        detail = (
            f"top-1 agreement with {record.exact} {gate.value:.1%} ({changed} of {record.rendering.images}"
            f" images changed), below {gate.threshold:.0%}"
        )
    return Flag(FlagCode.APPROXIMATION_GATE, Severity.ERROR, f"FAILED gate {number}: {detail}")


def verdict(record: ApproximationGates) -> str:
    failed = [f"gate {GATE_NUMBERS[gate.name]}" for gate in record.gates if not gate.passed]
    return f"FAILED ({', '.join(failed)})" if failed else "PASSED (both gates)"


def gate_cell(record: ApproximationGates, key: str) -> Cell:
    name = key.removeprefix("approximation.")
    if name == "images":
        return Cell(values=[float(record.rendering.images)])
    if name in ("top1_exact", "top1"):
        exact = name == "top1_exact"
        value = record.top1_exact if exact else record.top1_approximate
        path = record.exact_path if exact else record.approximate_path
        return Cell(values=[100.0 * value], flag=info(FlagCode.APPROXIMATION_GATE, path_text(path)))
    if name.startswith("gate."):
        gate = record.gate(GateName(name.removeprefix("gate.")))
        return Cell(values=[100.0 * gate.value], flag=gate_flag(record, gate))
    if name == "max_delta_p":
        return Cell(values=[record.max_abs_delta_p])
    if name in ("total_exact", "total"):
        path = record.exact_path if name == "total_exact" else record.approximate_path
        return Cell(values=[] if path.total_ms_p50 is None else [path.total_ms_p50])
    return Cell(text=verdict(record))


def _cell(records: VariantRecords, key: str, exact_of: dict[str, str]) -> Cell:
    record = records.approximation
    if isinstance(record, ApproximationGates):
        return gate_cell(record, key)
    if records.name in exact_of:
        return missing(records, record)
    approximations = sorted(name for name, exact in exact_of.items() if exact == records.name)
    if approximations:
        return Cell(text=f"n/a (the exact reference of {', '.join(approximations)})")
    return Cell(text="n/a (approximates no variant)")


def title(run: RunRecords, exact_of: dict[str, str]) -> str:
    compared = ", ".join(f"{name} vs {exact}" for name, exact in exact_of.items())
    records = [
        r.approximation for r in run.variants.values() if isinstance(r.approximation, ApproximationGates)
    ]
    if not records:
        return f"{SECTION}: {compared}"
    rendering = records[0].rendering
    subset = "" if rendering.images == rendering.of else f" (spread evenly over {rendering.of})"
    return (
        f"{SECTION}: {compared}, in process: {rendering.images} held-out digits{subset} upscaled"
        f" ({rendering.resampling}) to a {rendering.short_side} px shorter side, JPEG quality"
        f" {rendering.quality}, each decoded by serving_core's decode with each variant's own settings and"
        " predicted alone by its Predictor"
    )


def approximation_section(run: RunRecords) -> list[Row]:
    exact_of = {name: exact for name, exact in pairs(run).items() if name in run.variants}
    if not exact_of:
        return []
    section = title(run, exact_of)
    return [
        Row(
            section,
            key,
            label,
            unit,
            None,
            {name: _cell(records, key, exact_of) for name, records in run.variants.items()},
            spread_of="one pass over the JPEG digits",
        )
        for key, label, unit in ROWS
    ]


def approximation_notes(run: RunRecords) -> list[str]:
    if not any(name in run.variants for name in pairs(run)):
        return []
    return [
        "Approximation gates: a variant that declares `approximates` (bench/variants.toml) is gated against"
        " that exact variant in every profile. The HTTP accuracy row posts the PNG digits, which never take"
        " the JPEG path (JPEG_DRAFT cannot change them), so the gates use the digits rendered once as"
        " photo-sized JPEGs and predicted by both variants in process, each in its own environment (its"
        f" [variant.local] env). Gate 1: top-1 >= {ACCURACY_RATIO_MIN:.0%} of the exact variant's; gate 2:"
        f" top-1 agreement >= {AGREEMENT_MIN:.0%}; a failed gate is an error listed under Flags as FAILED."
    ]
