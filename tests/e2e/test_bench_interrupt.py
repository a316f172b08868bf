"""A bench run stopped by a signal cleans up like Ctrl-C: the real CLI (alone, or under `make compare`) on a
one-variant plan, signalled while a load level runs, must exit non-zero within a bound, leave no process
(service, its workers, the load driver) and no container behind, free the service's port, and mark
run.json interrupted with the signal and the step it stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(240)]

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANT = "onnx"
# The smallest plan the CLI takes: one variant, no start-up runs, one long level (the signal ends it); a
# manifest that does not exist skips the accuracy pass.
TINY_PLAN = [
    "--profile", "quick", "--runner", "local", "--variants", VARIANT, "--levels", "1", "--warmup", "1",
    "--duration", "60", "--repeats", "1", "--startup-runs", "0", "--cold-runs", "0", "--open-runs", "0",
    "--budget", "none", "--no-pin", "--payload", "photo_small", "--accuracy-manifest", "/dev/null/none.json",
]  # fmt: skip
LEVEL_TIMEOUT_S = 90.0  # bench start-up, the service's ready, accuracy and footprint before the level
EXIT_BOUND_S = 45.0  # the cleanup: SIGTERM to the service's group, its exit, run.json
POLL_S = 0.2


def _descendants(root: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(root).children(recursive=True)
    return []


def _is_driver(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return "bench.load.driver" in " ".join(process.cmdline())
    return False


def _wait_for_level(root: subprocess.Popen[bytes], log: Path) -> list[psutil.Process]:
    """Until the load driver of a level runs under ``root``; every descendant then (service included)."""
    deadline = time.monotonic() + LEVEL_TIMEOUT_S
    while time.monotonic() < deadline:
        if root.poll() is not None:
            pytest.fail(
                f"the bench ended before its level (exit {root.returncode}):\n{log.read_text()[-3000:]}"
            )
        tree = _descendants(root.pid)
        if any(_is_driver(process) for process in tree):
            time.sleep(0.5)  # into the level's warmup: Locust's users are sending
            return _descendants(root.pid)
        time.sleep(POLL_S)
    pytest.fail(f"no load level started within {LEVEL_TIMEOUT_S:g} s:\n{log.read_text()[-3000:]}")


def _listening_ports(processes: list[psutil.Process]) -> set[int]:
    ports = set()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    ports.add(connection.laddr.port)
    return ports


def _alive(processes: list[psutil.Process]) -> list[str]:
    """Those still running (a zombie has ended: reaping an orphan is up to whoever adopted it)."""
    left = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
    return left


def _in_session(session: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if process.pid != session and os.getsid(process.pid) == session:
                members.append(process)
    return members


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _run_json(results_dir: Path) -> dict[str, Any]:
    runs = sorted(results_dir.glob("*/run.json"))
    assert len(runs) == 1, runs
    return json.loads(runs[0].read_text())


@contextlib.contextmanager
def _launched(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a session of its own; should the test fail before stopping it, SIGTERM (the bench then
    cleans up after itself), SIGKILL to its whole tree if that is not enough."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, **(env or {})},
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            tree = _descendants(process.pid)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=EXIT_BOUND_S)
            except subprocess.TimeoutExpired:
                for member in [*tree, psutil.Process(process.pid)]:
                    with contextlib.suppress(psutil.Error):
                        member.kill()
                process.wait(timeout=10)


def _stop_and_check(
    process: subprocess.Popen[bytes],
    log: Path,
    send: list[tuple[str, signal.Signals]],
    results_dir: Path,
    service_ports: Callable[[list[psutil.Process]], set[int]] = _listening_ports,
) -> dict[str, Any]:
    """Signal ``process`` (``process``: it alone; ``group``: its process group) once the level runs, then
    check it ended in time leaving nothing behind; run.json's ``interrupted`` record."""
    started = _wait_for_level(process, log)
    ports = service_ports(started)
    assert ports, f"no listening service among {[p.cmdline() for p in started]}"
    signalled = time.monotonic()
    for index, (target, signum) in enumerate(send):
        if index:
            time.sleep(0.2)  # the second one arrives during the cleanup
        if target == "group":
            os.killpg(process.pid, signum)
        else:
            os.kill(process.pid, signum)
    try:
        status = process.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_BOUND_S:g} s after the signal:\n{log.read_text()[-3000:]}")
    took = time.monotonic() - signalled
    output = log.read_text()
    assert status != 0, output[-3000:]
    assert took < EXIT_BOUND_S
    deadline = time.monotonic() + 5.0  # the last SIGKILLed worker's exit is asynchronous
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert not _alive(started), f"left running: {_alive(started)}\n{output[-3000:]}"
    assert not _alive(_in_session(process.pid)), "a process of the bench's session survived it"
    assert all(_port_is_free(port) for port in ports), ports
    assert "Traceback" not in output, output[-3000:]
    run = _run_json(results_dir)
    assert run["status"] == "interrupted"
    record = run["interrupted"]
    assert record["signal"] == send[0][1].name and record["signum"] == send[0][1]
    assert record["step"] == "load-r0" and record["variant"] == VARIANT
    assert record["running_at_signal"] and record["cleanup"]["left_running"] == []
    assert run["finished_unix"] >= record["at_unix"] >= run["started_unix"]
    return record


@pytest.mark.parametrize(
    "send",
    [
        pytest.param([("process", signal.SIGTERM)], id="SIGTERM-to-the-bench"),
        # A hang-up reaches the whole group; SIGTERM right after it must not cut the cleanup short.
        pytest.param(
            [("group", signal.SIGHUP), ("group", signal.SIGTERM)], id="SIGHUP-then-SIGTERM-to-its-group"
        ),
    ],
)
def test_a_signalled_bench_stops_everything_and_marks_the_run(
    send: list[tuple[str, signal.Signals]], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench", "compare", *TINY_PLAN, "--results-dir", str(results)]
    with _launched(command, tmp_path / "bench.log") as bench:
        record = _stop_and_check(bench, tmp_path / "bench.log", send, results)
    assert bench.returncode == -send[0][1]  # it ends the way the signal would have, once clean
    assert [later["signal"] for later in record["later_signals"]] == [signum.name for _, signum in send[1:]]


@pytest.mark.parametrize("target", ["group", "process"], ids=["to-makes-group", "to-make-alone"])
def test_make_compare_passes_sigterm_on_and_the_bench_cleans_up(target: str, tmp_path: Path) -> None:
    """`make compare`: make forwards SIGTERM to the bench (and the group's own reaches it too)."""
    results = tmp_path / "results"
    # The recipe ends with `--runner $(RUNNER)`: the rest of the tiny plan rides on that variable.
    runner = " ".join([*TINY_PLAN[3:], "--results-dir", str(results)])
    # -o: never rebuild the venv or the artifacts from here (a requirements file touched is not this test's)
    command = ["make", "-o", ".venv/.installed", "-o", "build/artifacts/manifest.json", "compare",
               f"RUNNER={runner}"]  # fmt: skip
    with _launched(command, tmp_path / "make.log") as make:
        _stop_and_check(make, tmp_path / "make.log", [(target, signal.SIGTERM)], results)


def _project_containers(project: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def _published_ports(project: str) -> set[int]:
    ports = set()
    for container in _project_containers(project):
        inspected = subprocess.run(
            ["docker", "inspect", "--format", "{{json .NetworkSettings.Ports}}", container],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        for bindings in (json.loads(inspected.stdout) or {}).values():
            ports.update(int(binding["HostPort"]) for binding in bindings or [])
    return ports


@pytest.mark.docker
def test_a_signalled_compose_run_leaves_no_container_of_its_project(tmp_path: Path) -> None:
    from bench.registry import load_registry
    from bench.runners.compose import ComposeRunner

    engine = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    if engine.returncode != 0:
        pytest.skip("no Docker engine answers")
    project = "serving-lab-test-interrupt"
    runner = ComposeRunner(project=project)
    missing = runner.unavailable([variant for variant in load_registry() if variant.name == VARIANT])
    if missing:
        pytest.skip(f"{missing}: build the images with `make docker-images` first")
    runner.close()  # what an earlier, killed session of this test left
    results = tmp_path / "results"
    plan = ["--runner", "compose", *TINY_PLAN[4:]]
    command = [sys.executable, "-m", "bench", "compare", *plan, "--results-dir", str(results)]
    try:
        with _launched(command, tmp_path / "bench.log", {"BENCH_COMPOSE_PROJECT": project}) as bench:
            record = _stop_and_check(
                bench, tmp_path / "bench.log", [("group", signal.SIGTERM)], results,
                service_ports=lambda _: _published_ports(project),
            )  # fmt: skip
        assert _project_containers(project) == []
        assert any("container" in running for running in record["running_at_signal"])
    finally:
        runner.close()


def test_a_signalled_soak_stops_its_service_and_load_driver(tmp_path: Path) -> None:
    """`make soak` is a bench run too: SIGTERM during its capacity level (its driver runs in a session of its
    own, so nothing but the bench can end it) stops the service and the driver, frees the port and marks
    soak.json interrupted."""
    log = tmp_path / "soak.log"
    command = [sys.executable, "-m", "bench.soak", "--variants", VARIANT, "--ci", "--no-pin",
               "--results-root", str(tmp_path / "soak")]  # fmt: skip
    with _launched(command, log) as soak:
        started = _wait_for_level(soak, log)
        ports = _listening_ports(started)
        assert ports, f"no listening service among {[p.cmdline() for p in started]}"
        os.kill(soak.pid, signal.SIGTERM)
        try:
            soak.wait(timeout=EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_BOUND_S:g} s after the signal:\n{log.read_text()[-3000:]}")
    output = log.read_text()
    assert soak.returncode == -signal.SIGTERM, output[-3000:]
    deadline = time.monotonic() + 5.0
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert not _alive(started), f"left running: {_alive(started)}\n{output[-3000:]}"
    assert all(_port_is_free(port) for port in ports), ports
    assert "interrupted by SIGTERM" in output and "could not stop" not in output, output[-3000:]
    # soak.json marks the partial run: the signal, the variant it stopped, nothing left running.
    (written,) = [path for path in (tmp_path / "soak").glob("*/soak.json") if path.parent.name != "latest"]
    run = json.loads(written.read_text())
    assert run["status"] == "interrupted" and run["finished_unix"] is not None, run
    assert run["interrupted"]["signal"] == "SIGTERM" and run["interrupted"]["variant"] == VARIANT, run
    assert run["interrupted"]["cleanup"]["left_running"] == [], run["interrupted"]
    assert "Interrupted by SIGTERM during onnx" in (written.parent / "soak.md").read_text()
    assert not (tmp_path / "soak" / "latest").exists(), "an interrupted soak became results/soak/latest"
