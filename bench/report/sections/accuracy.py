"""Accuracy rows: top-1 over HTTP on the held-out digits, and the model hash each service reports."""

from __future__ import annotations

from bench.records import RunRecords, VariantRecords
from bench.records.models import Accuracy, ServiceInfo
from bench.report.flags import FlagCode, info
from bench.report.sections.common import CellOf, cell_rows, missing
from bench.report.table import Cell, Row


def top1_cell(records: VariantRecords) -> Cell:
    data = records.accuracy
    if not isinstance(data, Accuracy) or data.top1 is None:
        return missing(records, data)
    counts = f"{data.correct}/{data.images} images" + (f", {data.errors} errors" if data.errors else "")
    return Cell(values=[100.0 * data.top1], flag=info(FlagCode.ACCURACY_COUNTS, counts))


def model_hash_cell(records: VariantRecords) -> Cell:
    data = records.info
    if not isinstance(data, ServiceInfo):
        return missing(records, data)
    return Cell(text=data.model_hash or "n/a (/info has no model_hash)")


def accuracy_section(run: RunRecords) -> list[Row]:
    specs: list[tuple[str, str, str, str | None, CellOf]] = [
        ("accuracy.top1", "top-1 accuracy over HTTP (held-out digits)", "%", "higher", top1_cell),
        ("info.model_hash", "model hash (from /info)", "", None, model_hash_cell),
    ]
    return cell_rows(run, "accuracy", specs, "one pass")
