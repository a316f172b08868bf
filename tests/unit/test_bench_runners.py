import os
import time
from pathlib import Path

import psutil
import pytest

from bench.collectors.resources import ProcessTreeSampler, summarize_samples, within_window
from bench.compare import plan_cores
from bench.registry import Variant
from bench.runners import ExternalRunner, LocalRunner, runnable_variants
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


def _local_variant(tmp_path: Path, **local: object) -> Variant:
    fields = {"command": ["{python}", "-c", "pass"], **local}
    return Variant.model_validate({"name": "built", "port": 9, "root": tmp_path, "local": fields})


def test_a_missing_required_command_skips_the_variant_with_the_reason(tmp_path: Path) -> None:
    variant = _local_variant(tmp_path).model_copy(update={"requires": ["sh", "no-such-tool-here"]})
    assert LocalRunner().skip_reason(variant) == "needs `no-such-tool-here` on PATH (not found)"


def test_the_build_runs_once_in_the_root_and_its_failure_is_the_skip_reason(tmp_path: Path) -> None:
    marker = tmp_path / "builds.txt"
    script = f"open({str(marker)!r}, 'a').write('built\\n')"
    variant = _local_variant(tmp_path, build=["{python}", "-c", script])
    runner = LocalRunner()
    assert runner.skip_reason(variant) is None and runner.skip_reason(variant) is None
    assert marker.read_text() == "built\n"  # once per runner, however often it is asked
    broken = ["{python}", "-c", "import sys; print('no linker'); sys.exit(3)"]
    failing = _local_variant(tmp_path, build=broken)
    reason = LocalRunner().skip_reason(failing)
    assert reason is not None and "exited with 3" in reason and "no linker" in reason


def test_runnable_variants_lists_the_skipped_ones(tmp_path: Path) -> None:
    good = _local_variant(tmp_path)
    bad = good.model_copy(update={"name": "needs-tool", "requires": ["no-such-tool-here"]})
    remote = Variant(name="remote", url="http://127.0.0.1:9")
    runnable, skipped = runnable_variants([good, bad, remote], LocalRunner(), ExternalRunner())
    assert [variant.name for variant in runnable] == ["built", "remote"]
    assert [skip._asdict() for skip in skipped] == [
        {"name": "needs-tool", "reason": "needs `no-such-tool-here` on PATH (not found)"}
    ]
