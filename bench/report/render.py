"""The one table in Markdown, CSV and JSON, written from the tabulated frame (HTML: ``html.py``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.html import to_html
from bench.report.layout import context_lines, header, sections, skipped_lines, title
from bench.report.table import Table
from bench.results import RunDir, write_json


def to_markdown(table: Table) -> str:
    columns = header(table)
    lines = [f"# {title(table)}", "", *[f"- {line}" for line in context_lines(table)], ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    for section, rows in sections(table):
        lines.append(f"| **{section}** |" + " |" * (len(columns) - 1))
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    if table.skipped:
        lines += ["", "Skipped variants:", *[f"- {line}" for line in skipped_lines(table)]]
    lines += ["", "Notes:", *[f"- {note}" for note in table.notes]]
    if table.flags:
        lines += ["", "Flags:", *[f"- {flag}" for flag in table.flags]]
    return "\n".join(lines) + "\n"


def csv_frame(table: Table) -> pd.DataFrame:
    """The CSV's columns: the row's identity, then per variant median, min, max, n, ratio and note."""
    frame = table.frame
    has = frame["n"] > 0
    cells = pd.DataFrame(
        {
            "median": frame["median"].where(has, ""),
            "min": frame["low"].where(has, ""),
            "max": frame["high"].where(has, ""),
            "n": frame["n"],
            f"vs {table.baseline}": frame["ratio"].where(frame["ratio"].notna(), ""),
            "note": [
                line.text if isinstance(line.text, str) else line.flag.message if line.flag else ""
                for line in frame.itertuples()
            ],
            "row": frame["row"],
            "variant": frame["variant"],
        }
    )
    wide = cells.pivot(index="row", columns="variant")
    wide = wide.reindex(columns=[(field, v) for v in table.variants for field in cells.columns[:6]])
    wide.columns = [f"{variant} {field}" for field, variant in wide.columns]
    meta = frame.groupby("row").first()[["section", "key", "label", "unit", "better"]]
    meta = meta.rename(columns={"label": "metric"}).fillna({"better": ""})
    return pd.concat([meta, wide], axis=1)


def write_csv(table: Table, path: Path) -> Path:
    csv_frame(table).to_csv(path, index=False, lineterminator="\r\n")  # as csv.writer wrote it
    return path


def _cell_json(line: Any) -> dict[str, Any]:
    measured = line.n > 0
    return {
        "median": line.median if measured else None,
        "min": line.low if measured else None,
        "max": line.high if measured else None,
        "n": int(line.n),
        "values": line.values,
        "ratio_to_baseline": None if math.isnan(line.ratio) else line.ratio,
        "text": line.text if isinstance(line.text, str) else None,
        "flag": line.flag.message if line.flag else None,
    }


def to_json(table: Table) -> dict[str, Any]:
    rows = []
    for _, lines in table.frame.groupby("row", sort=True):
        first = lines.iloc[0]
        rows.append(
            {
                "section": first["section"],
                "key": first["key"],
                "metric": first["label"],
                "unit": first["unit"],
                "better": first["better"] if isinstance(first["better"], str) else None,
                "spread_of": first["spread_of"],
                "cells": {line.variant: _cell_json(line) for line in lines.itertuples()},
            }
        )
    return {
        "title": title(table),
        "baseline": table.baseline,
        "variants": table.variants,
        "rows": rows,
        "notes": table.notes,
        "flags": [str(flag) for flag in table.flags],
        "flag_details": [flag.to_dict() for flag in table.flags],
        "skipped_variants": [skipped.model_dump(include={"name", "reason"}) for skipped in table.skipped],
        "run": table.run,
    }


def write_outputs(table: Table, run_dir: RunDir, plots: list[Path]) -> list[Path]:
    markdown = run_dir.report_file("md")
    markdown.write_text(to_markdown(table))
    html_file = run_dir.report_file("html")
    html_file.write_text(to_html(table, plots))
    return [
        markdown,
        write_csv(table, run_dir.report_file("csv")),
        write_json(run_dir.report_file("json"), to_json(table)),
        html_file,
    ]
