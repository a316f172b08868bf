"""The stop-signal helper (bench/interrupt.py): SIGTERM and SIGHUP take Ctrl-C's exception path, later
signals never cut the cleanup short, the previous handlers come back, and whatever is still running is
stopped exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.interrupt import (
    CLEANUPS,
    Cleanups,
    Interrupted,
    SignalEvent,
    StopSignals,
    active_stop_signals,
    critical,
    event_of,
    interruption_record,
)
from bench.registry import Variant
from bench.runners import LocalRunner

SETTLE_S = 5.0  # a signal to oneself runs its Python handler at the next bytecode; this only bounds a hang


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:  # the handler raises from inside this loop
        time.sleep(0.01)


@pytest.fixture
def cleanups() -> Cleanups:
    return Cleanups()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_raises_the_ctrl_c_exception_with_its_name(signum: signal.Signals) -> None:
    with StopSignals(cleanups=Cleanups()) as stop, pytest.raises(KeyboardInterrupt) as raised:
        _signal_self(signum)
    assert isinstance(raised.value, Interrupted)
    assert raised.value.event.name == signum.name
    assert raised.value.event.exit_status == 128 + signum
    assert stop.first is not None and stop.first.signum == signum


def test_the_previous_handlers_come_back() -> None:
    def mine(signum: int, frame: object) -> None: ...

    # SIGINT too: a shell that starts pytest in the background hands it SIGINT ignored, not Python's default.
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {signum: signal.signal(signum, mine) for signum in signums}
    try:
        with StopSignals(cleanups=Cleanups()) as stop:
            assert all(signal.getsignal(signum) == stop._handle for signum in signums)
            assert active_stop_signals() is stop
        assert all(signal.getsignal(signum) is mine for signum in signums)
        assert active_stop_signals() is None
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_later_signals_are_recorded_and_never_interrupt_the_cleanup() -> None:
    cleaned: list[str] = []
    with StopSignals(cleanups=Cleanups()) as stop:
        try:
            _signal_self(signal.SIGTERM)
        except Interrupted:
            os.kill(os.getpid(), signal.SIGTERM)  # make forwards the one the group already got
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)  # the handlers run here and must not raise
            cleaned.append("done")
    assert cleaned == ["done"]
    assert [event.name for event in stop.received] == ["SIGTERM", "SIGTERM", "SIGHUP"]


def test_a_signal_inside_a_critical_section_is_raised_when_it_ends() -> None:
    steps: list[str] = []
    with StopSignals(cleanups=Cleanups()), pytest.raises(Interrupted):
        with critical():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            steps.append("recorded what it started")
        steps.append("never reached")
    assert steps == ["recorded what it started"]


def test_a_deferred_signal_survives_a_failure_of_the_critical_section() -> None:
    with StopSignals(cleanups=Cleanups()), pytest.raises(Interrupted) as raised, critical():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
        raise OSError("spawn failed")
    assert isinstance(raised.value.__context__, OSError)


def test_plain_ctrl_c_is_sigint() -> None:
    assert event_of(KeyboardInterrupt()).name == "SIGINT"
    event = SignalEvent(signal.SIGHUP, 1.0)
    assert event_of(Interrupted(event)) is event


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before, seen = signal.getsignal(signal.SIGTERM), []

    def enter() -> None:
        with StopSignals(cleanups=Cleanups()):
            seen.append((signal.getsignal(signal.SIGTERM), active_stop_signals()))

    worker = threading.Thread(target=enter)
    worker.start()
    worker.join(timeout=5)
    assert seen == [(before, None)]


def test_cleanups_stop_newest_first_each_once_and_keep_the_failures(cleanups: Cleanups) -> None:
    calls: list[str] = []

    def failing() -> None:
        calls.append("broken")
        raise RuntimeError("engine gone")

    cleanups.add("a", "service a", lambda: calls.append("a"))
    cleanups.add("b", "service b", failing)
    cleanups.add("c", "service c", lambda: calls.append("c"))
    cleanups.discard("c")  # its own finally stopped it already
    outcomes = cleanups.run_all()
    assert calls == ["broken", "a"]
    assert outcomes == [
        {"stopped": "service b", "error": "RuntimeError: engine gone"},
        {"stopped": "service a"},
    ]
    assert cleanups.pending() == ["service b"]  # retried by the next call, and only it
    cleanups.run_all()
    assert calls == ["broken", "a", "broken"]


def test_the_watchdog_kills_what_is_left_when_the_cleanup_overruns(cleanups: Cleanups) -> None:
    killed, exits = threading.Event(), []
    cleanups.add("stuck", "a stuck service", lambda: None, kill=killed.set)
    with StopSignals(cleanups=cleanups, deadline_s=0.2, on_deadline=exits.append) as stop:
        with pytest.raises(Interrupted):
            _signal_self(signal.SIGTERM)
        assert stop.running_at_signal == ["a stuck service"]
        assert killed.wait(timeout=5)
    assert exits == [128 + signal.SIGTERM]


def test_the_watchdog_is_called_off_once_the_cleanup_finished(cleanups: Cleanups) -> None:
    exits: list[int] = []
    with StopSignals(cleanups=cleanups, deadline_s=0.3, on_deadline=exits.append), pytest.raises(Interrupted):
        _signal_self(signal.SIGTERM)
    time.sleep(0.5)
    assert exits == []


def test_the_record_names_signal_step_and_cleanup() -> None:
    first, later = SignalEvent(signal.SIGTERM, 10.0), SignalEvent(signal.SIGTERM, 10.1)
    where = {"step": "load-r0", "variant": "onnx", "doing": "onnx: repeat 1/1"}
    record = interruption_record(
        first, where, running=["onnx (process group 7, port 8002)"], later=[later], cleanup={"took_s": 0.4}
    )
    assert record == {
        "signal": "SIGTERM",
        "signum": 15,
        "at_unix": 10.0,
        "step": "load-r0",
        "variant": "onnx",
        "doing": "onnx: repeat 1/1",
        "running_at_signal": ["onnx (process group 7, port 8002)"],
        "later_signals": [{"signal": "SIGTERM", "signum": 15, "at_unix": 10.1}],
        "cleanup": {"took_s": 0.4},
    }


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (an orphan's reaping is up to whoever adopted it)."""
    members = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
    return members


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Variant]:
    """A 'service' that forks a child and sleeps: the local runner must end the whole group."""
    child = "import time; time.sleep(60)"
    script = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    )
    yield Variant.model_validate(
        {"name": "sleeper", "port": 9, "root": tmp_path, "local": {"command": [sys.executable, "-c", script]}}
    )
    CLEANUPS.run_all()


def test_a_local_service_is_listed_until_stopped_and_the_cleanup_ends_its_group(
    sleeper: Variant, tmp_path: Path
) -> None:
    runner = LocalRunner()
    service = runner.start(sleeper, log_path=tmp_path / "sleeper.log")
    process: subprocess.Popen[bytes] = service.handle
    assert any(f"process group {process.pid}" in entry for entry in CLEANUPS.pending())
    time.sleep(0.5)  # lets it fork its child
    assert not [outcome for outcome in CLEANUPS.run_all() if "error" in outcome]
    assert process.poll() is not None
    assert _live_members(process.pid) == []  # its forked child too
    runner.stop(service)  # the runner's own stop afterwards finds nothing to do
    assert not any(f"process group {process.pid}" in entry for entry in CLEANUPS.pending())
