"""Distributed Locust (a master and two worker processes) delivers the same throughput as one generator.

Why the comparison is fair on this two-core machine: both configurations run the bench's own user class
(bench/load/locustfile.py's PredictUser, the small digit PNG to onnx's /predict) with the same number of
closed-loop users, each paced to one request per ``PACING_S`` (Locust's ``constant_pacing``), so the offered
throughput is fixed at ``USERS / PACING_S`` whatever the latency, as long as a request takes less than the
pacing. That is far below what one worker of the onnx service answers (it runs pinned to one core), and a few
percent of one core for the generator: neither the service nor the generator limits it, so a difference can
only come from the distribution itself (users lost or double-counted, stats not aggregated, a worker idle).
Every generator process (the single one, or master + workers) is pinned to the other core, so both get the
same CPU budget. The runs alternate (single, distributed, distributed, single) to cancel drift on the shared
machine, and the throughput is the mean per-second request count over the steady middle of each run (Locust's
per-second buckets, which the master merges from its workers' reports), so neither the start-up nor a
worker's last report, which the master may quit before receiving, enters it. Each user starts at a random
phase of its pacing, so the load is smooth rather than one burst of every user per period.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]

USERS, PACING_S, WORKERS = 16, 0.4, 2
RUN_S = 14
# Seconds left out at the start (spawning) and at the end of a run: a worker reports every 3 s, and the master
# quits half a second after telling the workers to stop, so a busy worker's last report can miss it.
HEAD_S, TAIL_S = 2, 5
TOLERANCE = 0.10
PAYLOAD_IMAGE = REPO_ROOT / "images" / "digits" / "00000.png"
PROCESS_TIMEOUT_S = RUN_S + 60

# The bench's user with a fixed pacing; written next to the run, imported by every Locust process.
PACED_LOCUSTFILE = '''"""The bench's PredictUser: a request per BENCH_PACING_S per user, in random phases."""

import os
import random

import gevent
from locust import constant_pacing

from bench.load import locustfile as bench_locustfile

PACING_S = float(os.environ["BENCH_PACING_S"])


class PacedPredictUser(bench_locustfile.PredictUser):
    wait_time = constant_pacing(PACING_S)

    def on_start(self) -> None:
        # users spawned together would otherwise send in bursts, every one in the same phase
        gevent.sleep(random.uniform(0, PACING_S))
'''


def write_paced_locustfile(directory: Path) -> Path:
    path = directory / "paced_locustfile.py"
    path.write_text(PACED_LOCUSTFILE)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def steady_throughput(stats: list[dict[str, Any]], head_s: int = HEAD_S, tail_s: int = TAIL_S) -> float:
    """Requests per second over the run's middle, from Locust's final JSON stats (``--json``/``--json-file``):
    the per-second buckets of every entry, summed, without the first ``head_s``, last ``tail_s`` seconds."""
    buckets: dict[int, int] = {}
    for entry in stats:
        for second, count in entry["num_reqs_per_sec"].items():
            buckets[int(second)] = buckets.get(int(second), 0) + int(count)
    if not buckets:
        raise AssertionError("Locust recorded no request")
    first, last = min(buckets), max(buckets)
    middle = range(first + head_s, last - tail_s + 1)
    assert len(middle) >= 5, f"run too short for a steady window: seconds {first}..{last}"
    return sum(buckets.get(second, 0) for second in middle) / len(middle)


def failures(stats: list[dict[str, Any]]) -> int:
    return sum(int(entry["num_failures"]) for entry in stats)


def _cores() -> tuple[list[int] | None, list[int] | None]:
    """(service cores, generator cores): one each when there are two, else no pinning."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return [available[-1]], [available[0]]


def _pin(cores: list[int] | None) -> Any:
    return (lambda: os.sched_setaffinity(0, cores)) if cores else None


@contextlib.contextmanager
def _processes(
    commands: list[list[str]], env: dict[str, str], cores: list[int] | None, logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index, command in enumerate(commands):
            with (logs / f"process-{index}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        preexec_fn=_pin(cores),
                    )
                )
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def run_locust(
    base_url: str, locustfile: Path, out_dir: Path, *, workers: int, cores: list[int] | None
) -> list[dict[str, Any]]:
    """One headless run: a single generator (``workers=0``) or a master with ``workers`` worker processes."""
    out_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "BENCH_PACING_S": str(PACING_S),
        "BENCH_PAYLOAD_IMAGE": str(PAYLOAD_IMAGE),
        "BENCH_PAYLOAD_FORMAT": "json",
        "BENCH_PREDICT_PATH": "/predict",
    }
    locust = [sys.executable, "-m", "locust", "-f", str(locustfile)]
    run = [
        "--headless",
        "-u",
        str(USERS),
        "-r",
        str(USERS / PACING_S),
        "-t",
        f"{RUN_S}s",
        "-H",
        base_url,
        "--only-summary",
        "--json-file",
        str(out_dir / "stats"),
    ]
    if workers == 0:
        commands = [[*locust, *run]]
    else:
        port = free_port()
        master = [
            *locust,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            "30",
            *run,
        ]
        worker = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        commands = [master, *([worker] * workers)]
    with _processes(commands, env, cores, out_dir) as processes:
        for process in processes:
            process.wait(PROCESS_TIMEOUT_S)
    log = (out_dir / "process-0.log").read_text(errors="replace")
    assert processes[0].returncode == 0, f"locust exited {processes[0].returncode}:\n{log[-3000:]}"
    assert all(process.returncode == 0 for process in processes), [p.returncode for p in processes]
    assert "CPU usage" not in log, f"the generator was CPU-bound, the comparison is void:\n{log[-2000:]}"
    return json.loads((out_dir / "stats.json").read_text())


def test_distributed_locust_gives_the_throughput_of_one_generator(
    start_registered_variant: Any, tmp_path: Path
) -> None:
    service_cores, generator_cores = _cores()
    service = start_registered_variant("onnx", workers=1)
    if service_cores:
        for process in service.processes():
            psutil.Process(process.pid).cpu_affinity(service_cores)
    locustfile = write_paced_locustfile(tmp_path)
    throughput: dict[str, list[float]] = {"single": [], "distributed": []}
    for index, mode in enumerate(["single", "distributed", "distributed", "single"]):
        stats = run_locust(
            service.base_url,
            locustfile,
            tmp_path / f"{index}-{mode}",
            workers=WORKERS if mode == "distributed" else 0,
            cores=generator_cores,
        )
        assert failures(stats) == 0, stats
        throughput[mode].append(steady_throughput(stats))

    offered = USERS / PACING_S
    ratio = statistics.mean(throughput["distributed"]) / statistics.mean(throughput["single"])
    print(
        f"\noffered {offered:.1f} req/s; single {throughput['single']}, "
        f"distributed {throughput['distributed']}; distributed/single = {ratio:.3f}"
    )
    # The precondition of a fair comparison: each run delivered the paced load, so nothing saturated.
    for mode, values in throughput.items():
        for value in values:
            assert value == pytest.approx(offered, rel=TOLERANCE), (
                f"{mode} run at {value:.1f} of {offered:.1f}"
            )
    assert ratio == pytest.approx(1.0, abs=TOLERANCE), f"distributed/single = {ratio:.3f}"
