"""The targets rows: each goal of bench/targets.toml with the value this run measured, pass, MISSED (a
warning in the report's Flags too) or not measured, and the basis it was judged on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.records import RunRecords
from bench.report.flags import FlagCode, info, warning
from bench.report.table import Cell, Row, tabulate
from bench.report.targets import TARGETS_FILE, Outcome, Status, evaluate_all, load_targets

Section = Callable[[RunRecords], list[Row]]
SECTION = "targets (bench/targets.toml)"
NOT_THEIRS = "—"  # the cell of a variant the target is not about


def outcome_cell(outcome: Outcome) -> Cell:
    target = outcome.target
    bound = f"{target.op} {target.threshold:g}{target.unit and ' ' + target.unit}"
    if outcome.status is Status.NOT_MEASURED:
        return Cell(text=f"not measured ({outcome.reason}; target {bound})")
    if outcome.status is Status.MISSED:
        message = f"MISSED target {target.id} ({bound}): {outcome.reason}; basis: {outcome.basis}"
        return Cell(values=[outcome.value], flag=warning(FlagCode.TARGET, message))
    return Cell(values=[outcome.value], flag=info(FlagCode.TARGET, f"pass, {bound}; basis: {outcome.basis}"))


def outcome_row(outcome: Outcome, variants: list[str]) -> Row:
    """The outcome in its variant's column (the first column when that variant is not in the run)."""
    target = outcome.target
    column = target.variant if target.variant in variants else variants[0]
    cells = {name: outcome_cell(outcome) if name == column else Cell(text=NOT_THEIRS) for name in variants}
    return Row(SECTION, f"target.{target.id}", target.goal, target.unit, None, cells, spread_of="see basis")


def targets_section(measured: list[Section], path: Path = TARGETS_FILE) -> Section:
    """The section judging the targets on the rows of the ``measured`` sections (tabulated on their own)."""

    def section(run: RunRecords) -> list[Row]:
        if not run.names:
            return []
        rows = [row for make in measured for row in make(run)]
        frame = tabulate(rows, run.names, run.baseline)
        return [outcome_row(outcome, run.names) for outcome in evaluate_all(load_targets(path), frame)]

    return section
