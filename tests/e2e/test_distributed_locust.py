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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.runners.local import free_port
from tests.fixtures.distributed_locust import (
    PACING_S,
    RUN_S,
    USERS,
    compare_generators,
    write_paced_locustfile,
)

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]

WORKERS = 2
PAYLOAD_IMAGE = REPO_ROOT / "images" / "digits" / "00000.png"
PROCESS_TIMEOUT_S = RUN_S + 60


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
    compare_generators(
        lambda name, mode: run_locust(
            service.base_url,
            locustfile,
            tmp_path / name,
            workers=WORKERS if mode == "distributed" else 0,
            cores=generator_cores,
        ),
        "processes",
    )
