"""The child-process side of one open-loop run (``mode = "open"``): drive ``openloop.py`` and write raw data.

Only requests scheduled inside the measured window count; the run ends when the schedule is done and every
outstanding request has answered or timed out, so a stall at the end of the window is measured too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bench.analysis.stability import assess, windows_of
from bench.load.arrivals import adherence, bounded_schedule
from bench.load.spec import (
    GENERATOR_SATURATION_PERCENT,
    LoadSpec,
    cpu_percent,
    write_final_stats,
)
from bench.records.models import OpenLoopWindow
from bench.stats import steal_percent

STABILITY_WINDOWS = 5  # default window = duration / this


def measure_open(spec: LoadSpec, out_dir: Path) -> None:
    import psutil
    from locust.env import Environment

    from bench.load import openloop

    assert spec.rate is not None
    user = openloop.OpenLoopUser
    user.host = spec.host
    user.schedule = bounded_schedule(
        spec.rate, spec.warmup_s, spec.duration_s, spec.seed, spec.max_requests
    ).tolist()
    user.measure_from_s = spec.warmup_s

    records: list[dict[str, Any]] = []
    errors: dict[str, int] = {}
    response_bytes = 0

    def on_request(
        response_time: float, response_length: int, exception: Exception | None, context: dict, **_: Any
    ) -> None:
        nonlocal response_bytes
        if not context.get("measured"):
            return
        records.append(
            {
                "scheduled_s": context["scheduled_s"],
                "latency_ms": float(response_time),
                "service_ms": context["service_ms"],
                "send_lag_ms": context["send_lag_ms"],
                "capped": bool(context["capped"]),
                "ok": exception is None,
            }
        )
        if exception is None:
            response_bytes += int(response_length or 0)
        else:
            key = str(exception)[:200]
            errors[key] = errors.get(key, 0) + 1

    environment = Environment(user_classes=[user])
    environment.events.request.add_listener(on_request)
    runner = environment.create_local_runner()
    myself = psutil.Process()
    cpu_before, host_before, started = myself.cpu_times(), psutil.cpu_times(), time.perf_counter()
    runner.start(1, spawn_rate=1)
    finished = user.finished.wait(timeout=spec.warmup_s + spec.duration_s + spec.request_timeout_s + 10)
    elapsed = time.perf_counter() - started
    cpu_after, host_after = myself.cpu_times(), psutil.cpu_times()
    runner.stop()
    write_final_stats(environment, out_dir)
    runner.quit()

    schedule_start = user.started_at if user.started_at is not None else started
    window_start_unix = time.time() - (time.perf_counter() - schedule_start) + spec.warmup_s
    records.sort(key=lambda record: record["scheduled_s"])
    successes = [record for record in records if record["ok"]]
    last_completion = max(
        (r["scheduled_s"] + r["latency_ms"] / 1000.0 for r in successes), default=spec.warmup_s
    )
    span = max(spec.duration_s, last_completion - spec.warmup_s)
    window_s = spec.window_s or spec.duration_s / STABILITY_WINDOWS
    stability = assess(
        windows_of(
            [r["scheduled_s"] for r in records],
            [r["latency_ms"] for r in records],
            [r["ok"] for r in records],
            spec.warmup_s,
            spec.warmup_s + spec.duration_s,
            window_s,
        )
    )
    schedule_adherence = adherence(
        [r["send_lag_ms"] for r in records], capped=sum(r["capped"] for r in records)
    )
    generator_cpu = cpu_percent(cpu_before, cpu_after, elapsed)
    window = OpenLoopWindow.model_validate(
        {
            "mode": "open",
            "users": 1,
            "rate": spec.rate,
            "seed": spec.seed,
            "max_in_flight": spec.max_in_flight,
            "scheduled": sum(1 for offset in user.schedule if offset >= spec.warmup_s),
            "start_unix": window_start_unix,
            "duration_s": span,
            "stopped_by": "schedule" if finished else "timeout",
            "requests": len(records),
            "successes": len(successes),
            "failures": len(records) - len(successes),
            "errors": errors,
            "request_bytes": len(records) * openloop.PAYLOAD.size,
            "response_bytes": response_bytes,
            "payload_bytes": openloop.PAYLOAD.size,
            "generator_cpu_percent": generator_cpu,
            "generator_saturated": generator_cpu >= GENERATOR_SATURATION_PERCENT,
            "generator_cores": sorted(os.sched_getaffinity(0)),
            "host_steal_percent": steal_percent(host_before, host_after),
            "adherence": schedule_adherence.to_dict(),
            "stability": stability.to_dict(),
        }
    )
    (out_dir / "latencies.json").write_text(json.dumps([r["latency_ms"] for r in successes]))
    (out_dir / "requests.json").write_text(json.dumps(records))
    (out_dir / "window.json").write_text(window.model_dump_json(indent=2) + "\n")
