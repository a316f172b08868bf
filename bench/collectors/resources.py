"""CPU% and resident memory of a whole process tree, sampled on a background thread while load runs."""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil

SAMPLE_INTERVAL_S = 0.5


class ProcessTreeSampler:
    """Sums CPU% (100 = one core) and RSS over a process and all its descendants.

    RSS of several workers is summed, so pages they share are counted more than once: an upper bound.
    """

    def __init__(self, root_pid: int, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self._samples: list[dict[str, float]] = []
        self._tracked: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{root_pid}", daemon=True)

    def start(self) -> None:
        self._tree_sample()  # primes cpu_percent for every process already there
        self._t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> list[dict[str, float]]:
        self._stop.set()
        self._thread.join(timeout=5 * self.interval_s + 1)
        return list(self._samples)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            sample = self._tree_sample()
            if sample is not None:
                cpu, rss = sample
                self._samples.append(
                    {
                        "t_s": time.perf_counter() - self._t0,
                        "t_unix": time.time(),
                        "cpu_percent": cpu,
                        "rss_bytes": float(rss),
                    }
                )

    def _tree_sample(self) -> tuple[float, int] | None:
        try:
            root = self._tracked.setdefault(self.root_pid, psutil.Process(self.root_pid))
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        cpu, rss = 0.0, 0
        for process in processes:
            tracked = self._tracked.setdefault(process.pid, process)
            try:
                # The first reading of a new process is 0.0 by psutil's design; later ones cover the interval.
                cpu += tracked.cpu_percent(None)
                rss += tracked.memory_info().rss
            except psutil.Error:
                continue
        return cpu, rss


def within_window(
    samples: list[dict[str, float]], start_unix: float, duration_s: float
) -> list[dict[str, float]]:
    """The samples taken inside a load level's measured window (warmup excluded)."""
    return [sample for sample in samples if start_unix <= sample["t_unix"] <= start_unix + duration_s]


def summarize_samples(samples: list[dict[str, float]]) -> dict[str, float]:
    """Mean and peak CPU% and RSS (MB) of one load level's samples."""
    if not samples:
        return {}
    cpu = np.array([sample["cpu_percent"] for sample in samples])
    rss_mb = np.array([sample["rss_bytes"] for sample in samples]) / 1e6
    return {
        "cpu_mean": float(cpu.mean()),
        "cpu_peak": float(cpu.max()),
        "rss_mean_mb": float(rss_mb.mean()),
        "rss_peak_mb": float(rss_mb.max()),
        "samples": float(len(samples)),
    }
