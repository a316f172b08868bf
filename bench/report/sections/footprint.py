"""Footprint rows: dependency closure (local runner), slim and fat image (compose runner), artifacts."""

from __future__ import annotations

from bench.records import NotMeasured, RunRecords, VariantRecords
from bench.records.derived import MB
from bench.records.models import Footprint, ImageInfo
from bench.report.flags import FlagCode, info
from bench.report.sections.common import CellOf, cell_rows, missing
from bench.report.table import Cell, Row


def _footprint(records: VariantRecords) -> Footprint | None:
    return records.footprint if isinstance(records.footprint, Footprint) else None


def closure_cell(records: VariantRecords) -> Cell:
    data = _footprint(records)
    closure = data.dependency_closure if data else None
    if closure is None or isinstance(closure, NotMeasured):
        return missing(records, closure)
    flag = info(FlagCode.DISTRIBUTIONS, f"{closure.distributions} distributions")
    return Cell(values=[closure.total_bytes / MB], flag=flag)


def image_cell(field_name: str, scale: float = 1.0, which: str = "image") -> CellOf:
    def cell(records: VariantRecords) -> Cell:
        data = _footprint(records)
        image = getattr(data, which) if data else None
        if not isinstance(image, ImageInfo):
            if image is None and data is not None and data.kind != "compose":
                return Cell(text="n/a (images: compose runner only)")
            return missing(records, image)
        if field_name == "tools":
            if not image.has_shell:
                return Cell(text="no /bin/sh (tools not probed)")
            return Cell(text=", ".join(image.tools) or "none found")
        value = getattr(image, field_name)
        return Cell(values=[value / scale]) if value is not None else Cell(text="n/a (no value)")

    return cell


def artifacts_cell(records: VariantRecords) -> Cell:
    data = _footprint(records)
    artifacts = data.artifacts if data else None
    if artifacts is None:
        return missing(records, artifacts)
    if artifacts.total_bytes is None:
        return Cell(text="n/a (none declared)")
    return Cell(values=[artifacts.total_bytes / MB])


# key, label, unit, better, cell
SPECS: list[tuple[str, str, str, str | None, CellOf]] = [
    ("footprint.closure_mb", "installed dependency closure (local runner)", "MB", "lower", closure_cell),
    ("footprint.image_mb", "image size", "MB", "lower", image_cell("size_bytes", MB)),
    ("footprint.image_layers", "image layers", "count", "lower", image_cell("layers")),
    ("footprint.image_tools", "tools in the image", "", None, image_cell("tools")),
    (
        "footprint.fat_image_mb",
        "fat (dev) image size, for comparison",
        "MB",
        "lower",
        image_cell("size_bytes", MB, "fat_image"),
    ),
    (
        "footprint.fat_image_layers",
        "fat (dev) image layers",
        "count",
        "lower",
        image_cell("layers", 1.0, "fat_image"),
    ),
    (
        "footprint.fat_image_tools",
        "tools in the fat (dev) image",
        "",
        None,
        image_cell("tools", 1.0, "fat_image"),
    ),
    ("footprint.artifacts_mb", "model artifacts", "MB", "lower", artifacts_cell),
]


def footprint_section(run: RunRecords) -> list[Row]:
    return cell_rows(run, "footprint", SPECS, "one measurement")
