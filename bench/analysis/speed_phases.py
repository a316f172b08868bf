"""Does a fresh process of a variant run at two speeds? Per-request latency, CPU time and minor page faults.

Starts a variant from the registry (its ``[variant.local]`` command and env, plus ``--env`` additions) on
loopback, sends N sequential requests on one keep-alive connection, and records per request: the client
latency, the service's own ``timings_ms`` (decode, inference) when it returns them, the minor page faults
the service's processes took meanwhile (``/proc/<pid>/stat`` field 10) and their threads' time on a CPU and
waiting for one (``/proc/<pid>/task/<tid>/schedstat``). Each series is cut at the change point of
``--split-on`` (the service's CPU time by default) when the two sides differ by more than ``--step``, and each
phase is summarized.
Fault counts are not timing noise: a phase that re-faults fresh memory every request shows it exactly, and
run-queue wait says how much of a latency step is only the machine's other load.

Every process is started and stopped by this module; every loop is bounded by a request count and a
wall-clock limit; only 127.0.0.1 is contacted. Linux only (/proc).

    python -m bench.analysis.speed_phases --variant onnx --processes 3 --requests 1500 --cores 1
    python -m bench.analysis.speed_phases --variant onnx --cores 1 --env MALLOC_ARENA_MAX=1 \\
        --env MALLOC_MMAP_THRESHOLD_=67108864 --env MALLOC_TRIM_THRESHOLD_=134217728 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.payloads import load_payload
from bench.registry import Variant, load_registry, select_variants
from bench.runners.local import free_port, spawn_local

READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
MAX_REQUESTS = 20_000
MAX_PROCESSES = 20


@dataclass
class Series:
    latency_ms: list[float] = field(default_factory=list)
    decode_ms: list[float | None] = field(default_factory=list)
    inference_ms: list[float | None] = field(default_factory=list)
    minflt: list[int] = field(default_factory=list)
    majflt: list[int] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    wait_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Phase:
    first: int  # index of its first request
    requests: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    median_decode_ms: float | None
    median_inference_ms: float | None
    median_minflt: float
    mean_minflt: float
    median_cpu_ms: float
    median_wait_ms: float


@dataclass
class ProcessRun:
    pid: int
    env: dict[str, str]
    cores: list[int] | None
    requests: int
    elapsed_s: float
    startup_minflt: int  # faults until /ready, before the first measured request
    phases: list[Phase]
    ready_status: dict[str, int]  # VmRSS, VmHWM, ... of the main process once ready, kB
    status: dict[str, int]  # the same at the end
    errors: int
    series: Series


# --- /proc --------------------------------------------------------------------------------------------------


def _stat_fields(path: Path) -> list[str]:
    text = path.read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces


def group_members(pgid: int) -> list[int]:
    """Every live process in the process group (the server and the workers it forked)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat_fields(entry / "stat")[2]) == pgid:  # field 5: pgrp
                    members.append(int(entry.name))
    return members


@dataclass(frozen=True)
class Counters:
    minflt: int
    majflt: int
    cpu_ns: int  # time on a CPU, summed over the live threads (/proc/<pid>/task/<tid>/schedstat)
    wait_ns: int  # time runnable but waiting for a CPU (the other load on the machine)


def counters(pids: Sequence[int]) -> Counters:
    """Faults are the processes' totals (exited threads included); CPU and wait times cover live threads."""
    minor = major = cpu = wait = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(Path(f"/proc/{pid}/stat"))
            minor += int(fields[7])  # field 10: minflt
            major += int(fields[9])  # field 12: majflt
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    on_cpu, waiting, _ = (task / "schedstat").read_text().split()
                    cpu += int(on_cpu)
                    wait += int(waiting)
    return Counters(minor, major, cpu, wait)


def memory_status(pid: int) -> dict[str, int]:
    """kB (Threads: a count); AnonHugePages: how much of the anonymous memory is transparent huge pages."""
    wanted = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads", "AnonHugePages")
    values: dict[str, int] = {}
    for name in ("status", "smaps_rollup"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in wanted and rest.split():
                    values[key] = int(rest.split()[0])
    return values


# --- phases -------------------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _median_or_none(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def change_point(values: Sequence[float], min_phase: int) -> int | None:
    """The split index that minimizes the summed absolute deviation from each side's median, on a
    50-request rolling median (robust to single outliers); None when no split is allowed."""
    n = len(values)
    if n < 2 * min_phase:
        return None
    window = 25
    smooth = [statistics.median(values[max(0, i - window) : i + window + 1]) for i in range(n)]
    best, best_cost = None, float("inf")
    step = max(1, n // 300)
    for split in range(min_phase, n - min_phase + 1, step):
        left, right = smooth[:split], smooth[split:]
        left_median, right_median = statistics.median(left), statistics.median(right)
        cost = sum(abs(v - left_median) for v in left) + sum(abs(v - right_median) for v in right)
        if cost < best_cost:
            best, best_cost = split, cost
    return best


def phase_of(series: Series, first: int, end: int) -> Phase:
    latency = series.latency_ms[first:end]
    faults = series.minflt[first:end]
    return Phase(
        first=first,
        requests=end - first,
        median_ms=round(statistics.median(latency), 3),
        p10_ms=round(_percentile(latency, 0.10), 3),
        p90_ms=round(_percentile(latency, 0.90), 3),
        median_decode_ms=_median_or_none(series.decode_ms[first:end]),
        median_inference_ms=_median_or_none(series.inference_ms[first:end]),
        median_minflt=statistics.median(faults),
        mean_minflt=round(statistics.fmean(faults), 1),
        median_cpu_ms=round(statistics.median(series.cpu_ms[first:end]), 3),
        median_wait_ms=round(statistics.median(series.wait_ms[first:end]), 3),
    )


SPLIT_ON = {
    # the service's CPU time per request: what the machine's other load changes least (the default)
    "cpu": lambda series: series.cpu_ms,
    "latency": lambda series: series.latency_ms,
    "minflt": lambda series: [float(value) for value in series.minflt],
}


def phases_of(series: Series, step: float, min_phase: int, split_on: str = "cpu") -> list[Phase]:
    """One phase, or two when the medians of ``split_on`` either side of its change point differ by more
    than ``step`` (a fraction of the lower one)."""
    n = len(series.latency_ms)
    if n == 0:
        return []
    values = SPLIT_ON[split_on](series)
    split = change_point(values, min_phase)
    if split is not None:
        low, high = sorted((statistics.median(values[:split]), statistics.median(values[split:])))
        if high > low * (1.0 + step) + (1.0 if split_on == "minflt" else 0.0):
            return [phase_of(series, 0, split), phase_of(series, split, n)]
    return [phase_of(series, 0, n)]


# --- one process --------------------------------------------------------------------------------------------


def _wait_ready(port: int, path: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with code {process.returncode} before it was ready")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return
        connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"not ready within {READY_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # its own group (start_new_session): the workers too
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_GRACE_S)


def run_process(
    variant: Variant,
    *,
    requests: int,
    max_seconds: float,
    extra_env: dict[str, str],
    cores: list[int] | None,
    payload_image: str,
    step: float,
    min_phase: int,
    split_on: str,
    log_dir: Path,
) -> ProcessRun:
    if variant.local is None:
        raise SystemExit(f"{variant.name}: no [variant.local] section, cannot be started")
    port = free_port()
    payload = load_payload(payload_image, variant.payload_format, oip_input=variant.oip_input)
    log_path = log_dir / f"{variant.name}-{port}.log"
    process = spawn_local(variant, port, log_path, cores, extra_env=extra_env)
    env_additions = {**variant.local.render(port=port, root=variant.root)[1], **extra_env}  # for the record
    series = Series()
    errors = 0
    try:
        _wait_ready(port, variant.ready_path, process, time.monotonic() + READY_TIMEOUT_S)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        members = group_members(process.pid)
        before = counters(members)
        startup_minflt = before.minflt
        ready_status = memory_status(process.pid)
        started = time.monotonic()
        for _ in range(requests):
            if time.monotonic() - started > max_seconds:
                break
            sent = time.perf_counter()
            connection.request("POST", variant.predict_path, body=payload.body, headers=payload.headers)
            response = connection.getresponse()
            body = response.read()
            latency = (time.perf_counter() - sent) * 1000.0
            now = counters(members)
            timings: dict[str, Any] = {}
            if response.status == 200:
                with contextlib.suppress(ValueError, AttributeError):
                    timings = json.loads(body).get("timings_ms") or {}
            else:
                errors += 1
            series.latency_ms.append(round(latency, 3))
            series.decode_ms.append(timings.get("decode"))
            series.inference_ms.append(timings.get("inference"))
            series.minflt.append(now.minflt - before.minflt)
            series.majflt.append(now.majflt - before.majflt)
            series.cpu_ms.append(round(max(0, now.cpu_ns - before.cpu_ns) / 1e6, 3))
            series.wait_ms.append(round(max(0, now.wait_ns - before.wait_ns) / 1e6, 3))
            before = now
        elapsed = time.monotonic() - started
        connection.close()
        status = memory_status(process.pid)
    finally:
        _stop(process)
    return ProcessRun(
        pid=process.pid,
        env=env_additions,
        cores=cores,
        requests=len(series.latency_ms),
        elapsed_s=round(elapsed, 2),
        startup_minflt=startup_minflt,
        phases=phases_of(series, step, min_phase, split_on),
        ready_status=ready_status,
        status=status,
        errors=errors,
        series=series,
    )


# --- CLI ----------------------------------------------------------------------------------------------------


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _cores(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def describe(run: ProcessRun) -> str:
    lines = [
        f"pid {run.pid}: {run.requests} requests in {run.elapsed_s} s, {run.errors} errors, "
        f"startup faults {run.startup_minflt}, VmRSS ready {run.ready_status.get('VmRSS', 0) / 1024:.0f} MB, "
        f"end {run.status.get('VmRSS', 0) / 1024:.0f} MB, "
        f"VmHWM {run.status.get('VmHWM', 0) / 1024:.0f} MB"
    ]
    for phase in run.phases:
        lines.append(
            f"  requests {phase.first:>5}-{phase.first + phase.requests - 1:<5} "
            f"median {phase.median_ms:6.1f} ms "
            f"(p10 {phase.p10_ms:.1f}, p90 {phase.p90_ms:.1f})  decode {_fmt(phase.median_decode_ms)} ms  "
            f"inference {_fmt(phase.median_inference_ms)} ms  cpu {phase.median_cpu_ms:.1f} ms  "
            f"run-queue wait {phase.median_wait_ms:.1f} ms  minflt/request median {phase.median_minflt:.0f} "
            f"mean {phase.mean_minflt:.0f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analysis.speed_phases",
        description=(
            "Fresh processes of one variant, N sequential requests each on loopback: per-request latency, "
            "CPU time and minor page faults, cut in two where the service's speed steps (if it does)."
        ),
    )
    parser.add_argument("--variant", default="onnx", help="registry name (default: onnx)")
    parser.add_argument("--variants-file", type=Path, action="append", default=[], help="extra registry file")
    parser.add_argument(
        "--processes", type=int, default=3, help=f"fresh processes, one after another (<= {MAX_PROCESSES})"
    )
    parser.add_argument(
        "--requests", type=int, default=1500, help=f"sequential requests per process (<= {MAX_REQUESTS})"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="wall-clock limit per process's requests"
    )
    parser.add_argument(
        "--env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="added to the variant's env (repeatable), e.g. MALLOC_ARENA_MAX=1",
    )
    parser.add_argument(
        "--cores", type=_cores, default=None, help="CPU affinity of the service, e.g. 1 or 0,1"
    )
    parser.add_argument("--payload", default="photo_medium", help="image in images/ (default: photo_medium)")
    parser.add_argument(
        "--step",
        type=float,
        default=0.15,
        help="two phases only when their medians differ by more than this fraction (0.15)",
    )
    parser.add_argument("--min-phase", type=int, default=100, help="fewest requests a phase may have (100)")
    parser.add_argument(
        "--split-on",
        choices=sorted(SPLIT_ON),
        default="cpu",
        help="series the change point is looked for in (default cpu: the service's CPU time per request, "
        "which the machine's other load changes least; latency includes run-queue waits)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every run (with its series) here")
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= MAX_PROCESSES or not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--processes must be 1..{MAX_PROCESSES} and --requests 1..{MAX_REQUESTS}")
    (variant,) = select_variants(load_registry(args.variants_file), [args.variant])
    extra_env = dict(args.env)
    log_dir = Path(tempfile.mkdtemp(prefix="speed-phases-"))
    runs = []
    for _ in range(args.processes):
        run = run_process(
            variant,
            requests=args.requests,
            max_seconds=args.max_seconds,
            extra_env=extra_env,
            cores=args.cores,
            payload_image=args.payload,
            step=args.step,
            min_phase=args.min_phase,
            split_on=args.split_on,
            log_dir=log_dir,
        )
        runs.append(run)
        print(describe(run), flush=True)
    measured = [run for run in runs if run.series.latency_ms]

    def per_process(values: str) -> list[float]:
        return [round(statistics.median(getattr(run.series, values)), 1) for run in measured]

    print(
        f"{variant.name} {extra_env or ''}: per-process medians: latency {per_process('latency_ms')} ms, "
        f"cpu {per_process('cpu_ms')} ms, minflt/request {per_process('minflt')}; "
        f"VmRSS {[round(run.status.get('VmRSS', 0) / 1024) for run in runs]} MB; "
        f"{sum(len(run.phases) > 1 for run in runs)}/{len(runs)} processes had two phases (logs: {log_dir})"
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
