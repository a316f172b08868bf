"""The verdict and the one table in Markdown, CSV (the table only) and JSON, written from the tabulated frame
(HTML: ``html.py``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.html import to_html
from bench.report.layout import (
    GLANCE,
    GLANCE_ALT,
    context_lines,
    header,
    sections,
    skipped_lines,
    title,
    verdict_header,
    verdict_lines,
)
from bench.report.overhead import OVERHEAD_TEXT, Overhead, framework_overheads, overhead_json
from bench.report.overhead import header as overhead_header
from bench.report.table import Table
from bench.report.verdict import Verdict, build_verdict
from bench.results import RunDir, write_json


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def verdict_markdown(verdict: Verdict) -> list[str]:
    columns = verdict_header(verdict)
    return [
        "## Verdict",
        "",
        verdict.rule.text,
        "",
        _markdown_row(columns),
        "|" + "|".join(["---"] * len(columns)) + "|",
        *[_markdown_row(line) for line in verdict_lines(verdict)],
        "",
        f"![{GLANCE_ALT}](plots/{GLANCE}.png)",
    ]


def overhead_markdown(overheads: list[Overhead]) -> list[str]:
    if not overheads:
        return []
    columns = overhead_header(overheads)
    return [
        "## Framework overhead",
        "",
        OVERHEAD_TEXT,
        "",
        _markdown_row(columns),
        "|" + "|".join(["---"] * len(columns)) + "|",
        *[_markdown_row(overhead.cells()) for overhead in overheads],
        "",
    ]


def to_markdown(table: Table) -> str:
    columns = header(table)
    lines = [f"# {title(table)}", "", *[f"- {line}" for line in context_lines(table)], ""]
    lines += [*verdict_markdown(build_verdict(table)), "", *overhead_markdown(framework_overheads(table))]
    lines += ["## Detail", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    for section, rows in sections(table):
        lines.append(f"| **{section}** |" + " |" * (len(columns) - 1))
        lines += [_markdown_row(row) for row in rows]
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


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    rule = verdict.rule
    return {
        "rule": rule.text,
        "basis": rule.basis.value,
        "ranking_row": rule.keys[0] if rule.keys else None,
        "tie_breaker_rows": list(rule.keys[1:]),
        "p99_row": rule.p99_key,
        "rss_row": verdict.rss_key,
        "size_row": verdict.size_key,
        "size": verdict.size_label,
        "baseline": verdict.baseline,
        "rows": [
            {
                "rank": row.rank,
                "tied": row.tied,
                "variant": row.variant,
                "baseline": row.is_baseline,
                "measured": math.isfinite(row.figure),
                "ranking_figure": _number(row.figure),
                "not_measured_reason": row.missing or None,
                "rps": {f"c{users}": _number(value) for users, value in row.rps.items()},
                "p99_ms": _number(row.p99_ms),
                "ratio_to_baseline": _number(row.ratio),
                "rss_mb": _number(row.rss_mb),
                "ready_s": _number(row.ready_s),
                "size_mb": _number(row.size_mb),
                "top1_pct": _number(row.top1_pct),
                "cores": {
                    "count": row.cores.count,
                    "workers": row.cores.workers,
                    "threads": row.cores.threads,
                    "pinned": row.cores.pinned,
                    "external": row.cores.external,
                    "text": row.cores.text,
                },
                "time_goes": row.time_goes,
                "flags": list(row.flags),
            }
            for row in verdict.rows
        ],
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
        "verdict": verdict_json(build_verdict(table)),
        "framework_overhead": overhead_json(framework_overheads(table)),
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
