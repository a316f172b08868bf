"""The goals of ``bench/targets.toml`` checked against one report's tabulated frame: pass, missed or not
measured, each with the value measured in the run and its basis (which row, which variants, over what).

A target reads the same medians and spreads the table shows (``table.tabulate``), so it cannot disagree with
the report. A variant, row or figure the run lacks makes the target not measured: never a pass.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

TARGETS_FILE = Path(__file__).resolve().parents[1] / "targets.toml"

Comparator = Literal[">=", "<=", "=="]
Relation = Literal["value", "times_better", "difference"]


class Target(BaseModel):
    """One goal: ``relation`` of ``metric`` for ``variant`` (against ``versus``) ``op`` ``threshold``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    goal: str
    metric: str  # a row key of the report's table
    variant: str
    versus: str | None = None
    relation: Relation = "value"
    op: Comparator
    threshold: float
    tolerance: float = 0.0  # of ==
    max_spread: float | None = None  # (max - min) / median over the repeats, variant and versus
    unit: str = ""

    @model_validator(mode="after")
    def _versus_matches_relation(self) -> Target:
        if (self.relation == "value") != (self.versus is None):
            raise ValueError(f"target {self.id}: `versus` goes with relation times_better or difference")
        return self


class Status(StrEnum):
    PASS = "pass"
    MISSED = "missed"
    NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Outcome:
    target: Target
    status: Status
    value: float  # NaN when not measured
    basis: str
    reason: str = ""  # why missed or not measured


class _AbsentError(Exception):
    """A figure the target needs is not in the run."""


def load_targets(path: Path = TARGETS_FILE) -> list[Target]:
    entries = tomllib.loads(path.read_text()).get("target", [])
    targets = [Target.model_validate(entry) for entry in entries]
    ids = [target.id for target in targets]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: target ids must be unique, got {ids}")
    return targets


def _line(frame: pd.DataFrame, metric: str, variant: str) -> Any:
    if variant not in set(frame["variant"]):
        raise _AbsentError(f"variant {variant} not in this run")
    lines = frame[(frame["key"] == metric) & (frame["variant"] == variant)]
    if lines.empty:
        raise _AbsentError(f"no row {metric} in this report")
    line = lines.iloc[0]
    if line["n"] == 0 or not math.isfinite(line["median"]):
        text = line["text"] if isinstance(line["text"], str) else "no value"
        raise _AbsentError(f"{variant}: {text}")
    return line


def _relative(target: Target, value: float, other: float, better: Any) -> float:
    if target.relation == "difference":
        return value - other
    if better not in ("higher", "lower"):
        raise _AbsentError(f"row {target.metric} is not a figure of merit: no times-better")
    high, low = (value, other) if better == "higher" else (other, value)
    if low == 0:
        raise _AbsentError("a zero figure: no ratio")
    return high / low


def _meets(target: Target, value: float) -> bool:
    if target.op == ">=":
        return value >= target.threshold
    if target.op == "<=":
        return value <= target.threshold
    return abs(value - target.threshold) <= target.tolerance + 1e-9


def _spread_problem(target: Target, lines: list[Any]) -> str | None:
    """Why the repeats are too far apart for the target (or too few to tell), else None."""
    if target.max_spread is None:
        return None
    for line in lines:
        if line["n"] < 2:
            raise _AbsentError(f"{line['variant']}: one repeat, its spread is unknown")
        width = line["high"] - line["low"]
        spread = width / abs(line["median"]) if line["median"] else (math.inf if width else 0.0)
        if spread > target.max_spread:
            return f"{line['variant']} repeat spread {spread:.0%} > {target.max_spread:.0%}"
    return None


def _basis(target: Target, line: Any) -> str:
    compared = {"times_better": " vs ", "difference": " - "}.get(target.relation)
    relation = f", {target.variant}{compared}{target.versus}" if compared else ""
    return f"{target.metric} '{line['label']}'{relation}, medians of n={line['n']} ({line['spread_of']})"


def evaluate(target: Target, frame: pd.DataFrame) -> Outcome:
    """The target against a table frame (one line per row key and variant: median, low, high, n, text)."""
    basis = target.metric
    try:
        line = _line(frame, target.metric, target.variant)
        basis = _basis(target, line)
        lines = [line]
        value = float(line["median"])
        if target.versus is not None:
            other = _line(frame, target.metric, target.versus)
            lines.append(other)
            value = _relative(target, value, float(other["median"]), line["better"])
        spread = _spread_problem(target, lines)
    except _AbsentError as absent:
        return Outcome(target, Status.NOT_MEASURED, math.nan, basis, str(absent))
    problems = [] if _meets(target, value) else [f"{value:.3g} is not {target.op} {target.threshold:g}"]
    problems += [spread] if spread is not None else []
    if problems:
        return Outcome(target, Status.MISSED, value, basis, "; ".join(problems))
    return Outcome(target, Status.PASS, value, basis)


def evaluate_all(targets: list[Target], frame: pd.DataFrame) -> list[Outcome]:
    return [evaluate(target, frame) for target in targets]
