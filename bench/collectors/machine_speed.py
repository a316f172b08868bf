"""The machine's own speed, measured before every load repeat: fixed single-threaded work on each service core
while no service runs. A repeat that was slower because the machine was (a neighbour VM, the host) then shows
as a slower calibration, not as the variant's own spread; a run whose calibration stayed flat ran on a quiet
machine. Two loops, because neighbours slow different things: a small matrix product (the core's arithmetic
and its caches) and a copy much larger than the last-level cache (memory bandwidth)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from statistics import median
from typing import Any

import psutil

from bench.stats import steal_percent

MATRIX_SIDE = 160  # float32: 100 KiB a matrix, inside L2 on every core this lab targets
MATRIX_PRODUCTS = 600  # per round: about 35 ms on the 2-core VMs this lab was measured on
COPY_BYTES = 64 * 1024 * 1024  # well past any last-level cache
COPIES = 3  # per round: about 30 ms
ROUNDS = 7  # the median of 7 rounds: one interrupted round moves it little
PROBE_TIMEOUT_S = 60.0
# One thread for every BLAS the numpy wheel may use: the loop measures one core, as a contestant gets.
SINGLE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def time_loops(core: int) -> dict[str, Any]:
    """In this process, pinned to ``core``: the median and range of each loop's round, in ms."""
    import numpy as np

    os.sched_setaffinity(0, {core})
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal((MATRIX_SIDE, MATRIX_SIDE), dtype=np.float32) for _ in range(2))
    source = np.ones(COPY_BYTES // 4, dtype=np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)  # touch every page once, so no round pays the first faults
    left @ right
    compute, memory = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(MATRIX_PRODUCTS):
            left @ right
        compute.append((time.perf_counter() - start) * 1000.0)
        start = time.perf_counter()
        for _ in range(COPIES):
            np.copyto(target, source)
        memory.append((time.perf_counter() - start) * 1000.0)
    return {
        "core": core,
        "rounds": ROUNDS,
        "compute_ms": median(compute),
        "compute_range_ms": [min(compute), max(compute)],
        "memory_ms": median(memory),
        "memory_range_ms": [min(memory), max(memory)],
    }


def measure_machine_speed(cores: list[int]) -> dict[str, Any]:
    """Each core's loops in a fresh process (nothing of the bench's own state in its caches), one core at a
    time, with the host's CPU steal over the whole probe."""
    before, started = psutil.cpu_times(), time.time()
    found = []
    for core in cores:
        done = subprocess.run(
            [sys.executable, "-m", "bench.collectors.machine_speed", str(core)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env={**os.environ, **SINGLE_THREAD},
            check=True,
        )
        found.append(json.loads(done.stdout))
    return {
        "at_unix": started,
        "took_s": round(time.time() - started, 3),
        "steal_percent": steal_percent(before, psutil.cpu_times()),
        "cores": found,
    }


if __name__ == "__main__":
    print(json.dumps(time_loops(int(sys.argv[1]))))
