"""RSS, open file descriptors and threads of a service's whole process tree, every few seconds.

The tree is re-read at every sample (a supervisor's restarted worker is a new pid), and each figure is summed
over it: the uvicorn supervisor and its workers, or the one process of a single-worker or Rust service.
File descriptors are the entries of ``/proc/<pid>/fd``; sockets are told apart by their link target
(``socket:[inode]``), since each client connection is one and the generator's connection count varies.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

from bench.soak.records import TreeSample


def _fd_counts(pid: int) -> tuple[int, int]:
    """(all entries, sockets) of /proc/<pid>/fd; a descriptor closed while it is read is skipped."""
    total = sockets = 0
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(entry.readlink())
        except OSError:
            continue
        total += 1
        sockets += target.startswith("socket:")
    return total, sockets


def sample_tree(root_pid: int) -> TreeSample | None:
    """One reading of ``root_pid`` and all its descendants; None once the root is gone."""
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    pids: list[int] = []
    rss = fds = sockets = threads = 0
    for process in processes:
        try:
            with process.oneshot():
                process_rss, process_threads = process.memory_info().rss, process.num_threads()
            process_fds, process_sockets = _fd_counts(process.pid)
        except (psutil.Error, OSError):
            continue  # exited between the listing and the reading
        pids.append(process.pid)
        rss, threads = rss + process_rss, threads + process_threads
        fds, sockets = fds + process_fds, sockets + process_sockets
    if not pids:
        return None
    return TreeSample(
        t_unix=time.time(), pids=pids, rss_bytes=rss, fds=fds, socket_fds=sockets, threads=threads
    )


class TreeSampler:
    """``sample_tree`` on a background thread every ``interval_s`` until ``stop``, at most ``max_samples``."""

    def __init__(self, root_pid: int, interval_s: float, max_samples: int) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.max_samples = max_samples
        self._samples: list[TreeSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"soak-sampler-{root_pid}", daemon=True)

    def start(self) -> None:
        first = sample_tree(self.root_pid)
        if first is None:
            raise RuntimeError(f"process {self.root_pid} is not running: nothing to sample")
        self._samples.append(first)
        self._thread.start()

    def stop(self) -> list[TreeSample]:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 10)
        last = sample_tree(self.root_pid)
        if last is not None:
            self._samples.append(last)
        return list(self._samples)

    def _run(self) -> None:
        while len(self._samples) < self.max_samples and not self._stop.wait(self.interval_s):
            sample = sample_tree(self.root_pid)
            if sample is not None:
                self._samples.append(sample)
