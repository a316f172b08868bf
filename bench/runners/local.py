"""The local runner: each variant is a process group on loopback, optionally pinned to its own cores."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Collection, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from bench.collectors.footprint import artifact_sizes, dependency_closure_size
from bench.collectors.resources import ProcessTreeSampler
from bench.interrupt import CLEANUPS, critical
from bench.registry import Variant
from bench.results import not_measured
from bench.runners.base import ResourceSampler, Runner, Service, StartupError

STOP_GRACE_S = 10.0
BUILD_TIMEOUT_S = 1800.0  # a first `cargo build --release` of an external variant takes minutes
BUILD_LOG_TAIL_LINES = 15


def missing_commands_reason(variant: Variant) -> str | None:
    """The reason a variant cannot start locally because a command its `requires` names is not on PATH."""
    missing = variant.missing_commands()
    if not missing:
        return None
    return f"needs {', '.join(f'`{command}`' for command in missing)} on PATH (not found)"


def build_variant(variant: Variant, timeout_s: float = BUILD_TIMEOUT_S) -> str | None:
    """Run the variant's `[variant.local] build` command (cwd = its root); the failure's reason, or None."""
    command = None if variant.local is None else variant.local.render_build(root=variant.root)
    if command is None:
        return None
    try:
        done = subprocess.run(
            command,
            cwd=variant.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"build `{' '.join(command)}` failed: {error}"
    if done.returncode == 0:
        return None
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-BUILD_LOG_TAIL_LINES:])
    return f"build `{' '.join(command)}` exited with {done.returncode}: {tail}"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def spawn_local(
    variant: Variant,
    port: int,
    log_path: Path,
    cores: Collection[int] | None,
    *,
    cold: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """The variant's ``[variant.local]`` command on ``port``, output appended to ``log_path``, pinned to
    ``cores`` (all when empty), in its own process group so that stopping it ends the workers it forks too."""
    assert variant.local is not None
    command, env_additions = variant.local.render(port=port, root=variant.root, cold=cold)
    env_additions.update(extra_env or {})
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            cwd=variant.local_cwd,
            env={**os.environ, **env_additions},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # the group start_new_session created (pgid == pid)


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the whole group, SIGKILL after ``grace_s``; the group too once its leader has exited (a
    worker it forked may outlive it)."""
    if process.poll() is None:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait(timeout=grace_s)
    signal_group(process, signal.SIGKILL)


class LocalRunner(Runner):
    name: ClassVar[str] = "local"

    def __init__(self, service_cores: list[int] | None = None) -> None:
        self.service_cores = service_cores
        self._build_outcomes: dict[str, str | None] = {}

    def skip_reason(self, variant: Variant) -> str | None:
        """A `requires` command missing from PATH, or a failed `build` (run once per runner, before the
        variant is first started)."""
        if variant.local is None:
            return None  # start() says why it cannot be started; not a skip
        reason = missing_commands_reason(variant)
        if reason is not None:
            return reason
        if variant.name not in self._build_outcomes:
            self._build_outcomes[variant.name] = build_variant(variant)
        return self._build_outcomes[variant.name]

    def start(self, variant: Variant, *, cold: bool = False, log_path: Path | None = None) -> Service:
        if variant.local is None:
            raise StartupError(
                f"{variant.name}: no [variant.local] section, the local runner cannot start it"
            )
        assert variant.port is not None  # guaranteed by the registry for variants without url
        # Another copy may already hold the registered port (a developer's server): never measure that one.
        port = variant.port if port_is_free(variant.port) else free_port()
        if log_path is None:
            log_path = Path(tempfile.mkstemp(prefix=f"bench-{variant.name}-", suffix=".log")[1])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cores = self.service_cores
        with critical():
            process = spawn_local(variant, port, log_path, cores, cold=cold)
            CLEANUPS.add(
                process,
                f"{variant.name} (process group {process.pid}, port {port})",
                stop=partial(stop_process_group, process),
                kill=partial(signal_group, process, signal.SIGKILL),
            )
        return Service(
            variant=variant,
            base_url=f"http://127.0.0.1:{port}",
            spawned_at=time.perf_counter(),
            pid=process.pid,
            cores=list(cores) if cores else None,
            log_path=log_path,
            handle=process,
        )

    def process_exit(self, service: Service) -> str | None:
        code = service.handle.poll()
        return None if code is None else f"exit code {code}"

    def stop(self, service: Service) -> None:
        stop_process_group(service.handle)
        CLEANUPS.discard(service.handle)

    def startup_unmeasurable(self, variant: Variant) -> str | None:
        return None if variant.local is not None else "no [variant.local] launch declared"

    def resource_sampler(self, service: Service) -> ResourceSampler | str:
        assert service.pid is not None
        return ProcessTreeSampler(service.pid)

    def footprint(self, variant: Variant, service: Service | None) -> dict[str, Any]:
        requirements = variant.requirements_path
        return {
            "kind": "local",
            "dependency_closure": (
                dependency_closure_size(requirements)
                if requirements is not None
                else not_measured("no `requirements` file declared for this variant")
            ),
            "image": not_measured("local runner: no image"),
            "artifacts": artifact_sizes(variant.artifact_paths),
        }

    def describe(self) -> dict[str, Any]:
        return {"runner": self.name, "service_cores": self.service_cores}
