"""Stop signals end a run the way Ctrl-C does, and whatever the bench started is stopped on the way out.

While :class:`StopSignals` is active, the first SIGINT, SIGTERM or SIGHUP raises :class:`Interrupted` (a
``KeyboardInterrupt``) in the main thread: ``except Exception`` lets it through, ``finally`` blocks and
context managers stop services and take compose projects down, ``subprocess.run`` kills its child. Later
signals are only recorded: ``make`` forwards the SIGTERM its group already received, so two arrive together,
and raising again would cut the cleanup short. A watchdog bounds that cleanup: past its deadline it kills
what is left and exits.

:data:`CLEANUPS` lists how to stop everything that is running and not yet stopped (runners add a service
when they start it and remove it once stopped), so what an interrupted ``finally`` missed is stopped too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLEANUP_DEADLINE_S = 60.0  # local stops take up to 2 x 10 s, `compose down` about 10 s
SIGNAL_EXIT_BASE = 128  # the shell's status of a process a signal ended: 128 + its number


@dataclass(frozen=True)
class SignalEvent:
    signum: int
    at_unix: float

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return SIGNAL_EXIT_BASE + self.signum

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.name, "signum": self.signum, "at_unix": self.at_unix}


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised wherever the main thread was: the exception path Ctrl-C takes."""

    def __init__(self, event: SignalEvent) -> None:
        super().__init__(f"stopped by {event.name}")
        self.event = event


def event_of(interrupt: KeyboardInterrupt) -> SignalEvent:
    """The signal behind an interrupt; a plain KeyboardInterrupt came from Python's own SIGINT handler."""
    if isinstance(interrupt, Interrupted):
        return interrupt.event
    return SignalEvent(signal.SIGINT, time.time())


@dataclass
class _Action:
    description: str
    stop: Callable[[], None]
    kill: Callable[[], None] | None


@dataclass
class Cleanups:
    """How to stop each thing the bench started and has not stopped yet, keyed by the object itself."""

    _actions: dict[Hashable, _Action] = field(default_factory=dict)
    # Reentrant: the signal handler reads the list in the main thread, maybe in the middle of an add().
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def add(
        self,
        key: Hashable,
        description: str,
        stop: Callable[[], None],
        kill: Callable[[], None] | None = None,
    ) -> None:
        """``stop``: the orderly way, idempotent; ``kill``: a fast forceful one for the watchdog."""
        with self._lock:
            self._actions[key] = _Action(description, stop, kill)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._actions.pop(key, None)

    def pending(self) -> list[str]:
        with self._lock:
            return [action.description for action in self._actions.values()]

    def run_all(self) -> list[dict[str, str]]:
        """Stop everything still listed, newest first; each entry says what was stopped or why it failed.

        An entry leaves the list once its stop has returned, so a second call retries only the failures."""
        with self._lock:
            snapshot = list(self._actions.items())[::-1]
        outcomes = []
        for key, action in snapshot:
            outcome = {"stopped": action.description}
            try:
                action.stop()
            except Exception as error:  # one failed stop must not keep the others from running
                outcome["error"] = f"{type(error).__name__}: {error}"
            else:
                self.discard(key)
            outcomes.append(outcome)
        return outcomes

    def kill_all(self) -> None:
        """The last resort (another thread may still be stopping something): every ``kill``, now."""
        with self._lock:
            kills = [action.kill for action in self._actions.values() if action.kill is not None]
        for kill in kills:
            with contextlib.suppress(Exception):
                kill()


CLEANUPS = Cleanups()


class _Deferral:
    """Critical sections: a signal arriving inside one is raised when the outermost one ends."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: SignalEvent | None = None


_DEFERRAL = _Deferral()


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold the interrupt back while a process is started and recorded in :data:`CLEANUPS`, so none can
    be started and then forgotten."""
    _DEFERRAL.depth += 1
    try:
        yield
    finally:
        _DEFERRAL.depth -= 1
        pending = _DEFERRAL.pending if _DEFERRAL.depth == 0 else None
        if pending is not None:
            _DEFERRAL.pending = None
            raise Interrupted(pending)  # also when the block failed: the signal must not be lost


def _say(message: str) -> None:
    """To stderr without Python's buffered streams (a signal handler may interrupt a write to them)."""
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), f"\n{message}\n".encode())


def _hard_exit(status: int) -> None:
    os._exit(status)


class StopSignals:
    """Installs the stop handlers on entry (main thread only; elsewhere it does nothing) and puts the
    previous handlers back on exit. ``received``: every stop signal that arrived, in order."""

    def __init__(
        self,
        signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
        *,
        cleanups: Cleanups = CLEANUPS,
        deadline_s: float = CLEANUP_DEADLINE_S,
        on_deadline: Callable[[int], None] = _hard_exit,
    ) -> None:
        self.signals = signals
        self.cleanups = cleanups
        self.deadline_s = deadline_s
        self.on_deadline = on_deadline
        self.received: list[SignalEvent] = []
        self.running_at_signal: list[str] = []
        self._previous: dict[signal.Signals, Any] = {}
        self._signalled, self._closed = threading.Event(), threading.Event()
        # Started here, not in the handler: a handler that starts a thread can deadlock on threading's own
        # lock when the signal interrupted the main thread while it held that lock.
        self._watchdog = threading.Thread(target=self._watch, name="stop-signals-watchdog", daemon=True)

    @property
    def first(self) -> SignalEvent | None:
        return self.received[0] if self.received else None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._watchdog.start()
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.signals}
            _ACTIVE.append(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous:
            _ACTIVE.remove(self)
        self._previous = {}
        self._closed.set()  # only now: the handler, which also sets an event, can no longer run
        self._signalled.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        event = SignalEvent(signum, time.time())
        self.received.append(event)
        if len(self.received) > 1:
            _say(f"{event.name}: already stopping, cleanup goes on (at most {self.deadline_s:g} s)")
            return
        self.running_at_signal = self.cleanups.pending()
        self._signalled.set()
        _say(f"{event.name}: stopping the run, then everything it started")
        if _DEFERRAL.depth > 0:
            _DEFERRAL.pending = event
            return
        raise Interrupted(event)

    def _watch(self) -> None:
        self._signalled.wait()
        if self._closed.wait(timeout=self.deadline_s) or self.first is None:
            return
        _say(f"cleanup took more than {self.deadline_s:g} s: killing what is left")
        self.cleanups.kill_all()
        self.on_deadline(self.first.exit_status)


def interruption_record(
    event: SignalEvent,
    where: dict[str, str | None],
    *,
    running: list[str],
    later: list[SignalEvent],
    cleanup: dict[str, Any],
) -> dict[str, Any]:
    """run.json's ``interrupted``: the signal and its time, the step, variant and progress line it stopped,
    the services running at that moment, signals received after it, and the cleanup's outcome."""
    return {
        **event.to_dict(),
        **where,
        "running_at_signal": running,
        "later_signals": [later_event.to_dict() for later_event in later],
        "cleanup": cleanup,
    }


_ACTIVE: list[StopSignals] = []


def active_stop_signals() -> StopSignals | None:
    """The innermost active :class:`StopSignals` (what it received, what was running), or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def stop_what_is_left(event: SignalEvent, cleanups: Cleanups = CLEANUPS) -> int:
    """After an interrupt unwound a command: stop what it started and is still running, say what was and
    was not stopped; the exit status the signal stands for (128 + signum)."""
    for outcome in cleanups.run_all():
        print(f"stopped {outcome['stopped']} {outcome.get('error', '')}".rstrip(), file=sys.stderr)
    for left in cleanups.pending():
        print(f"could not stop {left}", file=sys.stderr)
    print(f"interrupted by {event.name}", file=sys.stderr)
    return event.exit_status


def exit_by_signal(status: int) -> None:
    """End the process the way the signal behind ``status`` (128 + signum) would have, so a calling shell
    sees it (bash stops a loop only when its child died of SIGINT); other statuses are returned normally."""
    signum = status - SIGNAL_EXIT_BASE
    if signum not in {int(stop) for stop in STOP_SIGNALS}:
        sys.exit(status)
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(status)  # the signal is blocked or ignored here
