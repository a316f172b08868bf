"""What every section needs: the n/a text of a missing figure, and a row built from one cell function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.records import NotMeasured, RunRecords, VariantRecords
from bench.report.table import Cell, Row

RowSpec = tuple[str, str, str, str | None]  # key, label, unit, better
CellOf = Callable[[VariantRecords], Cell]


def missing_reason(records: VariantRecords, data: Any = None) -> str:
    """Why a figure is absent: the collector's own reason, the first failed step, or not measured."""
    if isinstance(data, NotMeasured):
        return f"n/a ({data.reason})"
    if records.errors:
        return f"n/a (failed: {records.errors[0].error.splitlines()[0][:120]})"
    return "n/a (not measured)"


def missing(records: VariantRecords, data: Any = None) -> Cell:
    return Cell(text=missing_reason(records, data))


def spec_rows(
    run: RunRecords,
    section: str,
    specs: list[RowSpec],
    cell: Callable[[VariantRecords, str], Cell],
    spread_of: str,
) -> list[Row]:
    """One row per spec, each cell from ``cell(variant records, row key)``."""
    return [
        Row(
            section,
            key,
            label,
            unit,
            better,
            {name: cell(records, key) for name, records in run.variants.items()},
            spread_of=spread_of,
        )
        for key, label, unit, better in specs
    ]


def cell_rows(
    run: RunRecords, section: str, specs: list[tuple[str, str, str, str | None, CellOf]], spread_of: str
) -> list[Row]:
    """One row per (key, label, unit, better, cell function of the variant's records)."""
    return [
        Row(section, key, label, unit, better, {name: cell(r) for name, r in run.variants.items()}, spread_of)
        for key, label, unit, better, cell in specs
    ]
