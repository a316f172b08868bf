"""``soak.md``: the verdicts and figures of one soak or fault run, as a short markdown section."""

from __future__ import annotations

import math

from bench.soak.records import Check, KillWorkerFault, SoakRun, VariantSoak


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _checks(checks: list[Check]) -> list[str]:
    lines = ["| check | status | value | bound | detail |", "|---|---|---:|---:|---|"]
    lines += [
        f"| {c.name} | {c.status} | {_number(c.value)} | {_number(c.bound)} | {c.reason} |" for c in checks
    ]
    return lines


def _variant_row(soak: VariantSoak) -> str:
    load = soak.load
    return (
        f"| {soak.variant} | **{soak.verdict.status}** | {load.capacity_rps:.1f} | {load.rate_rps:.1f} | "
        f"{load.requests} | {load.failures} | {soak.window_requests} | "
        f"{_number(soak.rss.per_10k_requests)} +- {_number(soak.rss.standard_error_per_10k)} | "
        f"{_number(soak.rss_raw_per_10k_requests)} | {soak.rss.first:.1f} -> {soak.rss.last:.1f} | "
        f"{_number(soak.other_fds.per_10k_requests, 2)} | {_number(soak.socket_fds.per_10k_requests, 2)} | "
        f"{_number(soak.threads.per_10k_requests, 2)} |"
    )


def _fault(fault: KillWorkerFault) -> list[str]:
    recovery = _number(fault.recovery_s, 2) if fault.recovery_s is not None else "never"
    return [
        f"### kill-worker: {fault.variant} -> **{fault.verdict.status}**",
        "",
        f"SIGKILL of worker {fault.killed_pid} (of {fault.workers_before}) at {fault.killed_at:.2f} s under "
        f"{fault.concurrency} closed-loop clients; {fault.in_flight_at_kill} requests in flight; "
        f"new worker {fault.new_pid} ready after {recovery} s (bound {fault.recovery_bound_s:.1f} s). "
        f"Lost: {fault.lost} of {fault.requests} requests (bound {fault.loss_bound}), "
        f"{fault.lost_sent_after_kill} of them sent after the kill; refused not_ready by the loading "
        f"replacement: {fault.refused_not_ready}; failed after the recovery: "
        f"{fault.failures_after_recovery} of {fault.requests_after_recovery}. "
        f"Errors: {fault.errors or 'none'}.",
        "",
        *_checks(fault.verdict.checks),
        "",
    ]


def render_markdown(run: SoakRun) -> str:
    lines = [f"## Soak and faults: {run.status}", "", f"`{run.command}`", "", run.host_note, ""]
    if run.interrupted is not None:
        stopped = run.interrupted.get("variant") or "before its first variant"
        lines += [f"Interrupted by {run.interrupted['signal']} during {stopped}: partial results.", ""]
    if run.variants:
        lines += [
            "RSS, fds and threads are summed over each service's process tree and fitted (least squares) "
            "against the requests served after the warm-up; the RSS slope is the median of 8 blocks' slopes "
            "over the later half of that window (first -> last: its RSS), which one or two steps or trims "
            "do not move, +- its standard error from the blocks' spread (it fails when its one-sided 95% "
            "lower bound is over the bound, passes when its upper bound is under it, and is inconclusive "
            "in between); raw: one line through the whole window (bench/soak/verdict.py says "
            "why, and the bounds).",
            "",
            "| variant | verdict | capacity req/s | rate req/s | requests | failed | judged | "
            "RSS MB/10k req | raw RSS MB/10k | RSS MB first -> last | other fds /10k | sockets /10k | "
            "threads /10k |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
            *(_variant_row(soak) for soak in run.variants),
            "",
        ]
        for soak in run.variants:
            lines += [
                f"### {soak.variant} (warm-up {soak.warmup_s:.0f} s)",
                "",
                *_checks(soak.verdict.checks),
                "",
            ]
    for fault in run.faults:
        lines += _fault(fault)
    for skipped in run.skipped:
        lines.append(f"- skipped {skipped.variant}: {skipped.reason}")
    for variant, error in run.errors.items():
        lines.append(f"- **{variant} failed**: {error}")
    return "\n".join(lines).rstrip() + "\n"
