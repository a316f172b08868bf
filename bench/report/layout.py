"""How the table reads, shared by every format: number formatting, cell texts, the header, the sections."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from bench.report.table import Table
from bench.report.verdict import NOT_MEASURED, Basis, Verdict, VerdictRow, finite

ARROWS = {"higher": " ↑", "lower": " ↓", None: ""}


def format_number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e6:
        return f"{int(value):,}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_cell(line: Any, *, is_baseline: bool) -> str:
    """One cell as the table shows it: figure [min-max] ×ratio (flag), or its n/a text."""
    if isinstance(line.text, str):
        return line.text
    text = format_number(line.median)
    if line.n > 1:
        text += f" [{format_number(line.low)}–{format_number(line.high)}]"
    if not is_baseline and not math.isnan(line.ratio):
        text += f" ×{line.ratio:.2f}"
    if line.flag is not None:
        text += f" ({line.flag.message})"
    return text


def header(table: Table) -> list[str]:
    return ["metric", "unit"] + [
        f"{variant} (baseline)" if variant == table.baseline else variant for variant in table.variants
    ]


def display_frame(table: Table) -> pd.DataFrame:
    """One line per row: section, the metric with its arrow, the unit and one formatted text per variant."""
    frame = table.frame.copy()
    frame["shown"] = [
        format_cell(line, is_baseline=line.variant == table.baseline) for line in frame.itertuples()
    ]
    shown = frame.pivot(index="row", columns="variant", values="shown")[table.variants]
    meta = frame.groupby("row").first()
    metric = meta["label"] + meta["better"].map(
        lambda better: ARROWS[better if isinstance(better, str) else None]
    )
    return pd.concat([meta["section"], metric.rename("metric"), meta["unit"], shown], axis=1)


def sections(table: Table) -> Iterator[tuple[str, list[list[str]]]]:
    """(section, its rows as [metric, unit, cell per variant]) in table order."""
    for section, lines in display_frame(table).groupby("section", sort=False):
        yield str(section), lines.drop(columns="section").astype(str).values.tolist()


def title(table: Table) -> str:
    started = datetime.fromtimestamp(table.run["started_unix"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"serving-lab comparison, {table.run['profile']['name']} profile, {started}"


def context_lines(table: Table) -> list[str]:
    sysinfo = table.run["sysinfo"]
    git = sysinfo["git"]
    commit = (git["commit"] or "unknown")[:12] + (" (dirty)" if git.get("dirty") else "")
    lines = [
        f"Machine: {sysinfo['cpu_model']}, {sysinfo['logical_cores']} logical cores, cgroup cpu.max"
        f" {sysinfo['cgroup']['cpu.max']}, load average at start {sysinfo['load_average_1m_at_start']:.2f}",
        f"Runner: {table.run['runner']['runner']}; commit {commit}; python {sysinfo['python']}; "
        + ", ".join(f"{name} {version}" for name, version in sysinfo["libraries"].items() if version),
    ]
    return lines + ([f"Machine during the run: {table.machine}"] if table.machine else [])


def skipped_lines(table: Table) -> list[str]:
    return [f"{skipped.name}: {skipped.reason}" for skipped in table.skipped]


GLANCE = "glance"  # the plot right after the verdict (plots/glance.png)
GLANCE_ALT = "closed-loop throughput vs p99 latency, one line per variant through its concurrency levels"


def _shown_levels(verdict: Verdict) -> list[int]:
    """The req/s columns besides the ranking figure (which already is the top level's in the quick case)."""
    rule = verdict.rule
    return [users for users in rule.levels if rule.basis is Basis.SLO or f"c{users}.rps" != rule.keys[0]]


def verdict_header(verdict: Verdict) -> list[str]:
    rule = verdict.rule
    p99 = "p99 ms at that rate" if rule.basis is Basis.SLO else f"p99 ms at c{rule.top_level or '?'}"
    rss = f"RSS MB (peak at {verdict.rss_key.split('.')[0]})" if verdict.rss_key else "RSS MB"
    size = "image MB" if verdict.size_label == "image" else "deps MB"
    return [
        "rank",
        "variant",
        rule.label,
        *[f"c{users} req/s" for users in _shown_levels(verdict)],
        p99,
        f"× {verdict.baseline}",
        rss,
        "ready s",
        size,
        "top-1 %",
        "cores",
        "where the time goes",
        "flags",
    ]


def _rank_text(row: VerdictRow) -> str:
    if row.rank is None:
        return "—"
    return f"{row.rank} (tie)" if row.tied else str(row.rank)


def _figure_text(row: VerdictRow) -> str:
    if finite(row.figure):
        return format_number(row.figure)
    return NOT_MEASURED if row.missing in ("", NOT_MEASURED) else f"{NOT_MEASURED} ({row.missing})"


def verdict_lines(verdict: Verdict) -> list[list[str]]:
    """One line of texts per variant, in rank order, under :func:`verdict_header`."""
    return [
        [
            _rank_text(row),
            (f"{row.variant} (baseline)" if row.is_baseline else row.variant) + (" ⚠" if row.flags else ""),
            _figure_text(row),
            *[format_number(row.rps[users]) for users in _shown_levels(verdict)],
            format_number(row.p99_ms),
            "n/a" if math.isnan(row.ratio) else f"{row.ratio:.2f}",
            format_number(row.rss_mb),
            format_number(row.ready_s),
            format_number(row.size_mb),
            format_number(row.top1_pct),
            row.cores.text,
            row.time_goes,
            "⚠ " + "; ".join(row.flags) if row.flags else "",
        ]
        for row in verdict.rows
    ]
