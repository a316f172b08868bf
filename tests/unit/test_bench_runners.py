import os
import time

import psutil
import pytest

from bench.collectors.resources import ProcessTreeSampler, summarize_samples, within_window
from bench.compare import plan_cores
from bench.runners.compose import parse_size
from bench.runners.local import free_port, port_is_free


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.5MiB", 12.5 * 1024**2), ("1.2GB", 1.2e9), ("0B", 0.0), (" 512kB ", 512e3), ("3", 3.0)],
)
def test_docker_sizes_parse(text: str, expected: float) -> None:
    assert parse_size(text) == pytest.approx(expected)


def test_docker_size_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_size("lots")


def test_core_plan_separates_generator_and_services() -> None:
    plan = plan_cores(pin=True)
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) >= 2:
        assert plan.generator == [usable[0]] and plan.service == usable[1:]
    else:
        assert plan.generator is None and "only 1" in plan.note
    assert plan_cores(pin=False).service is None


def test_a_held_port_is_not_free() -> None:
    import socket

    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert not port_is_free(port)


def test_process_tree_sampler_sees_a_busy_child() -> None:
    busy = psutil.Popen(
        ["python3", "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    )
    try:
        sampler = ProcessTreeSampler(os.getpid(), interval_s=0.2)
        sampler.start()
        time.sleep(1.5)
        samples = sampler.stop()
    finally:
        busy.kill()
        busy.wait()
    summary = summarize_samples(samples)
    assert summary["cpu_peak"] > 30  # the spinning child is part of this process's tree
    assert summary["rss_peak_mb"] > 5
    first = samples[0]["t_unix"]
    assert within_window(samples, first, 0.0) == [samples[0]]
