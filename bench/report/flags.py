"""Structured flags: what a cell says beside its figure, and which of those a reader must not miss."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"  # context shown in the cell only (a count, the basis of a prediction)
    WARNING = "warning"  # also listed under the report's Flags: the figure may mislead
    ERROR = "error"  # a step failed


class FlagCode(StrEnum):
    GENERATOR_SATURATED = "generator_saturated"
    REQUESTS_FAILED = "requests_failed"
    BEHIND_SCHEDULE = "behind_schedule"
    UNSTABLE_RUN = "unstable_run"
    UNSTABLE_CEILING = "unstable_ceiling"
    REPEAT_SPREAD = "repeat_spread"  # a throughput row's repeats spread more than 10%, with its likely cause
    MACHINE_NOT_QUIET = "machine_not_quiet"  # the calibration loops moved or the host stole CPU time
    SLO_SEARCH = "slo_search"
    SLO_OUTLIERS = "slo_outliers"  # the search found far less than queueing explains: slow outliers decide it
    STEP_FAILED = "step_failed"
    DISTRIBUTIONS = "distributions"
    ACCURACY_COUNTS = "accuracy_counts"
    FUSED_PREPROCESSING = "fused_preprocessing"
    MODEL_BASIS = "model_basis"
    APPROXIMATION_GATE = "approximation_gate"
    DRAFT_DECODE = "draft_decode"  # the floor's decode is DCT-scaled (JPEG_DRAFT on)
    TARGET = "target"  # a goal of bench/targets.toml: met (info), missed (warning) or not measured (info)


@dataclass(frozen=True)
class Flag:
    code: FlagCode
    severity: Severity
    message: str


def info(code: FlagCode, message: str) -> Flag:
    return Flag(code, Severity.INFO, message)


def warning(code: FlagCode, message: str) -> Flag:
    return Flag(code, Severity.WARNING, message)


@dataclass(frozen=True)
class ReportFlag:
    """One entry of the report's Flags list: a flag raised on a variant, in a section or by a failed step."""

    code: FlagCode
    severity: Severity
    variant: str
    message: str
    section: str | None = None
    row: str | None = None  # the row key, for a flag raised on one row
    short: str | None = None  # its few words on the verdict line, for a flag the verdict repeats

    def __str__(self) -> str:
        where = f"{self.variant}, {self.section}" if self.section else self.variant
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "variant": self.variant,
            "section": self.section,
            "message": self.message,
        }
