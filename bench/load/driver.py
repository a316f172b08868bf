"""One closed-loop load level, run headless in its own process, writing raw data only.

The parent calls :func:`run_level`; it starts ``python -m bench.load.driver <spec.json> <out_dir>``
(pinned to the generator's cores), which warms up, resets Locust's statistics, measures for a duration or
a request count and writes: ``latencies.json`` (every successful request's latency in ms, measured window
only), ``window.json`` (counts, bytes, the generator's own CPU use) and Locust's own
``locust_stats*.csv``, ``locust_failures.csv`` and ``locust.json``.

The ``open`` mode (``openloop.py``) offers a seeded Poisson rate instead of a number of users: the same
files, where ``latencies.json`` holds latencies from each request's scheduled time, plus ``requests.json``
(per measured request: scheduled offset, corrected latency, service time, send lag, success) and, in
``window.json``, the schedule adherence (late and capped requests) and the window stability verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.load.spec import (
    GENERATOR_SATURATION_PERCENT,
    LoadSpec,
    cpu_percent,
    write_final_stats,
)
from bench.records.models import LoadWindow
from bench.stats import steal_percent

_EXIT_GRACE_S = 60.0

LOCUSTFILES = {
    "closed": Path(__file__).with_name("locustfile.py"),
    "open": Path(__file__).with_name("openloop.py"),
}


def run_level(spec: LoadSpec, out_dir: Path, cores: list[int] | None = None) -> dict[str, Any]:
    """Run one level in a child process and return its window.json."""
    if spec.mode not in LOCUSTFILES:
        raise ValueError(f"unknown load mode {spec.mode!r}")
    if spec.mode == "open" and not (spec.rate and spec.rate > 0):
        raise ValueError("open-loop load needs a positive rate")
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "spec.json"
    spec_path.write_text(json.dumps(asdict(spec), indent=2) + "\n")
    log_path = out_dir / "driver.log"
    with log_path.open("wb") as log:
        # Its own session: only the bench ends it. An interrupt (bench/interrupt.py) reaches subprocess.run as
        # a KeyboardInterrupt, on which it kills the child and waits for it; a signal to the bench's process
        # group would otherwise end the driver first and show as a failed level.
        completed = subprocess.run(
            [sys.executable, "-m", "bench.load.driver", str(spec_path), str(out_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=spec.warmup_s + spec.duration_s + spec.request_timeout_s + _EXIT_GRACE_S,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
            start_new_session=True,
            check=False,
        )
    if completed.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"load driver failed (exit {completed.returncode}), see {log_path}:\n{tail}")
    return json.loads((out_dir / "window.json").read_text())


def _configure_environment(spec: LoadSpec) -> None:
    """The locustfiles read their configuration from the environment (so they also run from Locust's CLI)."""
    os.environ["BENCH_PAYLOAD_IMAGE"] = spec.payload_image
    os.environ["BENCH_PAYLOAD_FORMAT"] = spec.payload_format
    os.environ["BENCH_PREDICT_PATH"] = spec.predict_path
    os.environ["BENCH_REQUEST_TIMEOUT_S"] = str(spec.request_timeout_s)
    os.environ["BENCH_MAX_IN_FLIGHT"] = str(spec.max_in_flight)
    os.environ["BENCH_OIP_INPUT"] = spec.oip_input or ""


def _measure(spec: LoadSpec, out_dir: Path) -> None:
    """The child process: everything here runs under gevent."""
    _configure_environment(spec)
    if spec.mode == "open":
        from bench.load.openloop_measure import measure_open

        measure_open(spec, out_dir)
        return

    import gevent
    import psutil
    from gevent.event import Event
    from locust import stats as locust_stats
    from locust.env import Environment

    from bench.load import locustfile

    locustfile.PredictUser.host = spec.host
    environment = Environment(user_classes=[locustfile.PredictUser])
    runner = environment.create_local_runner()

    state: dict[str, Any] = {"measuring": False, "latencies": [], "failures": 0, "response_bytes": 0}
    errors: dict[str, int] = {}
    enough = Event()

    def on_request(response_time: float, response_length: int, exception: Exception | None, **_: Any) -> None:
        if not state["measuring"]:
            return
        if exception is None:
            state["latencies"].append(float(response_time))
            state["response_bytes"] += int(response_length or 0)
        else:
            state["failures"] += 1
            key = str(exception)[:200]
            errors[key] = errors.get(key, 0) + 1
        done = len(state["latencies"]) + state["failures"]
        if spec.max_requests is not None and done >= spec.max_requests:
            enough.set()

    environment.events.request.add_listener(on_request)
    runner.start(spec.users, spawn_rate=max(spec.users, 1) * 4)
    gevent.sleep(spec.warmup_s)

    csv_writer = locust_stats.StatsCSVFileWriter(
        environment, locust_stats.PERCENTILES_TO_REPORT, str(out_dir / "locust")
    )
    environment.stats.reset_all()
    myself = psutil.Process()
    cpu_before, host_before = myself.cpu_times(), psutil.cpu_times()
    start_wall, start = time.time(), time.perf_counter()
    state["measuring"] = True
    history = gevent.spawn(csv_writer.stats_writer)
    stopped_by = "requests" if enough.wait(timeout=spec.duration_s) else "duration"
    state["measuring"] = False
    elapsed = time.perf_counter() - start
    cpu_after, host_after = myself.cpu_times(), psutil.cpu_times()
    runner.stop()
    history.kill()
    csv_writer.close_files()
    # The history writer refreshes the summary files only once a second: write the final ones now.
    write_final_stats(environment, out_dir)
    runner.quit()

    generator_cpu = cpu_percent(cpu_before, cpu_after, elapsed)
    completed = len(state["latencies"]) + state["failures"]
    window = LoadWindow(
        users=spec.users,
        start_unix=start_wall,
        duration_s=elapsed,
        stopped_by=stopped_by,
        requests=completed,
        successes=len(state["latencies"]),
        failures=state["failures"],
        errors=errors,
        request_bytes=completed * locustfile.PAYLOAD.size,
        response_bytes=state["response_bytes"],
        payload_bytes=locustfile.PAYLOAD.size,
        generator_cpu_percent=generator_cpu,
        generator_saturated=generator_cpu >= GENERATOR_SATURATION_PERCENT,
        generator_cores=sorted(os.sched_getaffinity(0)),
        host_steal_percent=steal_percent(host_before, host_after),
    )
    (out_dir / "latencies.json").write_text(json.dumps(state["latencies"]))
    (out_dir / "window.json").write_text(window.model_dump_json(indent=2) + "\n")


if __name__ == "__main__":
    spec_file, output_dir = sys.argv[1], Path(sys.argv[2])
    _measure(LoadSpec(**json.loads(Path(spec_file).read_text())), output_dir)
