"""The verdict: one line per variant, ranked by one stated rule, with the figures a reader decides on.

Every figure is read from the built table (the same medians the detail table shows) and the cores from
run.json, so the verdict cannot disagree with the table below it. The rule: with SLO search rows (full
profile), the max sustainable req/s under the p99 SLO; otherwise closed-loop req/s at the highest
concurrency measured; ties are broken by the next figures of the rule (then share a rank). A variant
without the ranking figure ranks last, marked not measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bench.records.loader import measured_payloads
from bench.records.models import RunInfo
from bench.report.flags import FlagCode, Severity
from bench.report.overhead import framework_overheads
from bench.report.sections.inprocess import STAGES
from bench.report.table import Cell, Row, Table

SLO_KEY = "slo.max_rps"
SLO_P99_KEY = "slo.p99_at_max"
ACCURACY_KEY = "accuracy.top1"
GATES_KEY = "approximation.verdict"
NOT_MEASURED = "not measured"


class Basis(StrEnum):
    SLO = "slo"  # max sustainable req/s under the p99 SLO (open-loop search)
    CLOSED = "closed"  # closed-loop req/s at the highest concurrency measured


@dataclass(frozen=True)
class Rule:
    basis: Basis
    keys: tuple[str, ...]  # row keys in priority order: the ranking figure, then its tie-breakers
    levels: tuple[int, ...]  # the closed-loop levels shown as req/s columns (lowest and highest measured)
    p99_key: str | None  # the row of the p99 at the ranking figure's level
    label: str  # the ranking figure's column heading
    text: str  # the rule, in one line

    @property
    def top_level(self) -> int | None:
        return self.levels[-1] if self.levels else None


@dataclass(frozen=True)
class Cores:
    count: int | None  # None: not known (an external service)
    workers: int | None
    threads: int | None
    pinned: bool
    external: bool = False

    @property
    def text(self) -> str:
        if self.external:
            return "external service (cores not set by the bench)"
        if self.count is None:
            return "cores unknown"
        where = f"{self.count} core{'s' * (self.count != 1)}" + ("" if self.pinned else ", not pinned")
        if self.workers is None and self.threads is None:
            return where
        workers = "?" if self.workers is None else str(self.workers)
        threads = "?" if self.threads is None else str(self.threads)
        plural = {"workers": self.workers != 1, "threads": self.threads != 1}
        return (
            f"{where} ({workers} worker{'s' * plural['workers']} x {threads} thread{'s' * plural['threads']})"
        )


@dataclass(frozen=True)
class TimeBreakdown:
    """Where one variant's milliseconds go: the in-process stages (means), the ceiling, HTTP and the floor."""

    total_ms: float = math.nan  # in-process ms/request, the ceiling's median
    decode_ms: float = math.nan
    preprocess_ms: float = math.nan
    inference_ms: float = math.nan
    postprocess_ms: float = math.nan
    fused: bool = False  # preprocessing runs inside the graph: counted in inference
    http_c1_p50_ms: float = math.nan
    floor_multiple: float = math.nan
    missing: str = ""  # why there are no in-process figures (the table's n/a reason)


@dataclass(frozen=True)
class VerdictRow:
    rank: int | None  # None: the ranking figure was not measured (listed last)
    tied: bool
    variant: str
    is_baseline: bool
    figure: float  # the ranking figure (NaN when not measured)
    missing: str  # why it is not measured ("" when measured)
    rps: dict[int, float]  # closed-loop req/s per shown level
    p99_ms: float
    ratio: float  # the ranking figure over the baseline's
    rss_mb: float
    ready_s: float
    size_mb: float
    top1_pct: float
    cores: Cores
    time_goes: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    baseline: str
    size_label: str  # "image" or "dependency closure": what the footprint section measured
    size_key: str
    rss_key: str | None
    rows: list[VerdictRow]


def finite(value: float) -> bool:
    return not math.isnan(value) and not math.isinf(value)


def _rows(table: Table) -> dict[str, Row]:
    return {row.key: row for row in table.rows}


def _cell(rows: dict[str, Row], key: str | None, variant: str) -> Cell | None:
    row = rows.get(key) if key else None
    return row.cells.get(variant) if row is not None else None


def _median(rows: dict[str, Row], key: str | None, variant: str) -> float:
    cell = _cell(rows, key, variant)
    if cell is None or cell.summary is None or cell.summary.n == 0:
        return math.nan
    return cell.median


def _reason(cell: Cell | None) -> str:
    """The n/a text of a cell without its "n/a (...)" wrapping."""
    text = cell.text if cell is not None and cell.text else NOT_MEASURED
    if text.startswith("n/a (") and text.endswith(")"):
        return text[len("n/a (") : -1]
    return text


def _measured(rows: dict[str, Row], key: str) -> bool:
    row = rows.get(key)
    return row is not None and any(c.summary is not None and c.summary.n > 0 for c in row.cells.values())


def ranking_rule(table: Table) -> Rule:
    rows = _rows(table)
    info = RunInfo.model_validate(table.run)
    levels = [users for users in info.profile.concurrency_levels if _measured(rows, f"c{users}.rps")]
    shown = tuple(sorted({min(levels), max(levels)})) if levels else ()
    closed = tuple(dict.fromkeys(f"c{users}.rps" for users in reversed(shown)))
    last = "a variant without that figure ranks last (not measured)"
    if _measured(rows, SLO_KEY):
        slo = f"{info.profile.slo_ms:g}"
        breakers = ", then ".join(f"closed-loop c{users} req/s" for users in reversed(shown)) or "none"
        return Rule(
            Basis.SLO,
            (SLO_KEY, *closed),
            shown,
            SLO_P99_KEY,
            f"max req/s, p99 <= {slo} ms",
            f"Ranked by the max sustainable req/s with p99 <= {slo} ms (open-loop SLO search); ties broken"
            f" by {breakers}; {last}.",
        )
    if not shown:
        return Rule(
            Basis.CLOSED, (), (), None, "req/s", "No closed-loop throughput measured: nothing to rank."
        )
    top = shown[-1]
    breakers = f"ties broken by c{shown[0]} req/s" if len(shown) > 1 else "equal figures share a rank"
    return Rule(
        Basis.CLOSED,
        closed,
        shown,
        f"c{top}.p99",
        f"c{top} req/s",
        f"Ranked by closed-loop req/s at the highest concurrency measured (c{top}, median of repeats);"
        f" {breakers}; {last}.",
    )


def ranking_key(figures: Sequence[float]) -> tuple[float, ...]:
    """Sort key of one variant (ascending = better): not measured last, then each figure, higher first."""
    measured = bool(figures) and finite(figures[0])
    return (0.0 if measured else 1.0, *(-value if finite(value) else math.inf for value in figures))


def assign_ranks(figures: dict[str, Sequence[float]]) -> list[tuple[str, int | None, bool]]:
    """(variant, rank, tied) best first; equal keys share a rank (1, 1, 3), run order among them; a variant
    whose first figure is missing gets no rank."""
    keyed = {variant: ranking_key(values) for variant, values in figures.items()}
    order = sorted(keyed, key=lambda variant: keyed[variant])  # stable: run order among equals
    ranked: list[tuple[str, int | None, bool]] = []
    for position, variant in enumerate(order):
        if keyed[variant][0] != 0.0:
            ranked.append((variant, None, False))
            continue
        same_as = [other for other in order if other != variant and keyed[other] == keyed[variant]]
        rank = (
            position + 1 if position == 0 or keyed[order[position - 1]] != keyed[variant] else ranked[-1][1]
        )
        ranked.append((variant, rank, bool(same_as)))
    return ranked


def _ms(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def time_sentence(t: TimeBreakdown) -> str:
    """Where the time goes, in one sentence, from what is known."""
    parts = []
    if finite(t.total_ms):
        stages = [f"decode {_ms(t.decode_ms)} ms"]
        if t.fused:
            stages.append(f"inference {_ms(t.inference_ms)} (preprocessing fused in)")
        else:
            stages += [f"preprocess {_ms(t.preprocess_ms)}", f"inference {_ms(t.inference_ms)}"]
        if finite(t.postprocess_ms) and t.postprocess_ms >= max(0.5, 0.05 * t.total_ms):
            stages.append(f"postprocess {_ms(t.postprocess_ms)}")
        parts.append(" + ".join(stages) + f" of {_ms(t.total_ms)} ms in process")
        if finite(t.http_c1_p50_ms):
            gap = t.http_c1_p50_ms - t.total_ms
            parts.append(
                f"HTTP adds {_ms(gap)} ms at c1 (p50)"
                if gap >= 0
                else f"HTTP c1 p50 {_ms(t.http_c1_p50_ms)} ms is below that (measured at another time)"
            )
        parts.append(
            f"{t.floor_multiple:.1f}x its floor" if finite(t.floor_multiple) else "floor not measured"
        )
    elif finite(t.http_c1_p50_ms):
        parts += [f"HTTP only: p50 {_ms(t.http_c1_p50_ms)} ms at c1", f"no in-process figures ({t.missing})"]
    else:
        return f"{NOT_MEASURED} ({t.missing})" if t.missing and t.missing != NOT_MEASURED else NOT_MEASURED
    return "; ".join(parts)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def cores_of(run: dict[str, Any], variant: str) -> Cores:
    """The cores a variant's service had (run.json pinning, else the machine's) and its workers x threads
    (its registry entry's local env: WORKERS or *_WORKERS, THREADS)."""
    entry = next((e for e in run.get("variants", []) if e.get("name") == variant), {})
    if entry.get("url"):
        return Cores(None, None, None, pinned=False, external=True)
    env = (entry.get("local") or {}).get("env") or {}
    workers_key = "WORKERS" if "WORKERS" in env else next((k for k in env if k.endswith("_WORKERS")), None)
    workers = _int(env.get(workers_key)) if workers_key else None
    threads = _int(env.get("THREADS"))
    pinned = (run.get("pinning") or {}).get("service_cores")
    if pinned:
        return Cores(len(pinned), workers, threads, pinned=True)
    return Cores(_int((run.get("sysinfo") or {}).get("logical_cores")), workers, threads, pinned=False)


def primary_payload(table: Table) -> str:
    payloads = measured_payloads(RunInfo.model_validate(table.run))
    return next((payload for payload in payloads if payload.primary), payloads[0]).name


def breakdown_of(table: Table, variant: str) -> TimeBreakdown:
    rows = _rows(table)
    stage = {name: _median(rows, f"ceiling.stage.{name}", variant) for name in STAGES}
    preprocess = _cell(rows, "ceiling.stage.preprocess", variant)
    flag = preprocess.flag if preprocess is not None else None
    return TimeBreakdown(
        total_ms=_median(rows, "ceiling.p50", variant),
        decode_ms=stage["decode"],
        preprocess_ms=stage["preprocess"],
        inference_ms=stage["inference"],
        postprocess_ms=stage["postprocess"],
        fused=flag is not None and flag.code is FlagCode.FUSED_PREPROCESSING,
        http_c1_p50_ms=_median(rows, "c1.p50", variant),
        floor_multiple=_median(rows, f"inprocess.{primary_payload(table)}.multiple", variant),
        missing=_reason(_cell(rows, "ceiling.p50", variant)),
    )


SHORT_FLAGS = {
    FlagCode.GENERATOR_SATURATED: "generator saturated: req/s may be understated",
    FlagCode.SLO_SEARCH: "SLO search unsettled (see Flags)",
    FlagCode.SLO_OUTLIERS: "SLO limit set by slow outliers, not queueing (see Flags)",
    FlagCode.UNSTABLE_RUN: "unstable run (see Flags)",
}


def _flags(table: Table, rows: dict[str, Row], rule: Rule, variant: str) -> list[str]:
    """What a reader must not miss beside the variant's line."""
    found = []
    gates = _cell(rows, GATES_KEY, variant)
    if gates is not None and (gates.text or "").startswith("FAILED"):
        found.append(f"approximation gates {gates.text}")
    top1, base = _median(rows, ACCURACY_KEY, variant), _median(rows, ACCURACY_KEY, table.baseline)
    if variant != table.baseline and finite(top1) and finite(base) and top1 < base - 1e-9:
        found.append(f"top-1 accuracy dropped {top1 - base:+.1f} pp vs {table.baseline}")
    ranking = _cell(rows, rule.keys[0], variant) if rule.keys else None
    if ranking is not None and ranking.flag is not None and ranking.flag.severity is not Severity.INFO:
        found.append(SHORT_FLAGS.get(ranking.flag.code, ranking.flag.message))
    top = rule.top_level
    if top is not None and _median(rows, f"c{top}.failures", variant) > 0:
        found.append(f"failed requests at c{top}")
    if any(f.code is FlagCode.STEP_FAILED and f.variant == variant for f in table.flags):
        found.append("a step failed (see Flags)")
    return found + spread_notes(table, rule, variant)


def spread_notes(table: Table, rule: Rule, variant: str) -> list[str]:
    """The repeat-spread flags of the rows the verdict line shows, in their short form."""
    shown = {*rule.keys, *(f"c{users}.rps" for users in rule.levels)}
    return [
        flag.short
        for flag in table.flags
        if flag.code is FlagCode.REPEAT_SPREAD
        and flag.variant == variant
        and flag.row in shown
        and flag.short
    ]


def _overlaps(rows: dict[str, Row], key: str, upper: str, lower: str) -> bool:
    """Whether two variants' repeat ranges of the ranking figure overlap (their order is not settled)."""
    a, b = _cell(rows, key, upper), _cell(rows, key, lower)
    if a is None or b is None or a.summary is None or b.summary is None:
        return False
    if a.summary.n < 2 or b.summary.n < 2:
        return False
    return a.summary.low <= b.summary.high


def _size(rows: dict[str, Row]) -> tuple[str, str]:
    if _measured(rows, "footprint.image_mb"):
        return "image", "footprint.image_mb"
    return "dependency closure", "footprint.closure_mb"


def _rss_key(rows: dict[str, Row], rule: Rule) -> str | None:
    for users in reversed(rule.levels):
        if _measured(rows, f"c{users}.rss_peak_mb"):
            return f"c{users}.rss_peak_mb"
    return None


def build_verdict(table: Table) -> Verdict:
    """The verdict rows of a built table, best first."""
    rows = _rows(table)
    rule = ranking_rule(table)
    size_label, size_key = _size(rows)
    rss_key = _rss_key(rows, rule)
    figures = {variant: [_median(rows, key, variant) for key in rule.keys] for variant in table.variants}
    base = figures[table.baseline][0] if table.baseline in figures and rule.keys else math.nan
    first_key = rule.keys[0] if rule.keys else None
    overheads = {overhead.variant: overhead for overhead in framework_overheads(table)}
    verdict_rows = []
    previous: str | None = None
    for variant, rank, tied in assign_ranks(figures):
        figure = figures[variant][0] if first_key else math.nan
        flags = _flags(table, rows, rule, variant)
        if (
            previous is not None
            and first_key
            and rank is not None
            and _overlaps(rows, first_key, previous, variant)
        ):
            flags.append(f"repeat range overlaps the variant ranked above ({previous})")
        verdict_rows.append(
            VerdictRow(
                rank=rank,
                tied=tied,
                variant=variant,
                is_baseline=variant == table.baseline,
                figure=figure,
                missing="" if finite(figure) else _reason(_cell(rows, first_key, variant)),
                rps={users: _median(rows, f"c{users}.rps", variant) for users in rule.levels},
                p99_ms=_median(rows, rule.p99_key, variant),
                ratio=figure / base if finite(figure) and finite(base) and base != 0 else math.nan,
                rss_mb=_median(rows, rss_key, variant),
                ready_s=_median(rows, "startup.ready_s", variant),
                size_mb=_median(rows, size_key, variant),
                top1_pct=_median(rows, ACCURACY_KEY, variant),
                cores=cores_of(table.run, variant),
                time_goes=time_sentence(breakdown_of(table, variant))
                + (f"; {overheads[variant].sentence()}" if variant in overheads else ""),
                flags=tuple(flags),
            )
        )
        previous = variant if rank is not None else previous
    return Verdict(rule, table.baseline, size_label, size_key, rss_key, verdict_rows)
