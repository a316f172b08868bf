"""``python -m ray_serving``: a private local Ray instance (one CPU, no dashboard, no usage stats, loopback
only), Serve's HTTP proxy on HOST:PORT, WORKERS replicas (default one) of the deployment in ``app.py``.

Every Ray process (GCS, raylet, its agents, the Serve controller, proxy and replica workers) descends from
this one, so a CPU affinity set on it holds for all of them. SIGTERM or SIGINT: the application is deleted
first (the replica finishes the requests it has, for up to GRACEFUL_TIMEOUT, while the proxy still carries
the answers back), then Serve and Ray are shut down and this process exits; whatever is left of the tree
after that, or after GRACEFUL_TIMEOUT + 20 s, is killed. A signal sent to the whole process group also stops
Ray's own processes at once: the rest of the tree is then ended without a drain.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import logging.config
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from ray_serving.settings import LOG_TARGET_ENV, WORKDIR_ENV, RayServeSettings
from serving_core.jsonlog import log_config
from serving_core.settings import MULTIPROC_ENV, RUNTIME_DIR_ENV

APP_NAME = "serving"
# Ray's smallest object store; nothing is put in it but Serve's own bookkeeping.
OBJECT_STORE_BYTES = 80 * 1024 * 1024
# Requests a replica accepts at once: above serving_core's MAX_IN_FLIGHT, so that its middleware (not a queue
# in Ray's proxy) sheds the excess with 503s, as in every other variant.
UNBOUNDED_ONGOING = 10_000
STOP_MARGIN_SECONDS = 20.0
PR_SET_CHILD_SUBREAPER = 36
RAY_CORE = {"gcs_server", "raylet"}
LOG_MONITOR = "ray/_private/log_monitor.py"

log = logging.getLogger("ray_serving")


def _replica_environment(settings: RayServeSettings, runtime: Path) -> dict[str, str]:
    """What the replicas need in their environment, besides what they inherit from this process."""
    metrics_dir = settings.prometheus_multiproc_dir or runtime / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    return {
        RUNTIME_DIR_ENV: str(runtime),
        MULTIPROC_ENV: str(metrics_dir),
        LOG_TARGET_ENV: f"/proc/{os.getpid()}/fd/2",
        WORKDIR_ENV: str(Path.cwd()),
    }


def _append_stderr() -> None:
    """Reopen stderr in append mode: the replicas append their lines to the same file, and this process must
    not write over them from its own offset (a pipe is unaffected)."""
    try:
        appending = os.open(f"/proc/{os.getpid()}/fd/2", os.O_WRONLY | os.O_APPEND)
    except OSError:
        return
    os.dup2(appending, 2)
    os.close(appending)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (the image has no psutil)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _kill_what_is_left() -> None:
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def _ray_core() -> list[int]:
    """The GCS, the raylet and the log monitor of the instance this process started (the log monitor, with
    Python's default SIGTERM, is the first to go when the whole group is signalled)."""
    core = []
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if Path(f"/proc/{pid}/comm").read_text().strip() in RAY_CORE or LOG_MONITOR in command:
                core.append(pid)
    return core


def _guard_the_stop(core: list[int], ray_stopping: threading.Event, seconds: float, runtime: Path) -> None:
    """From the first stop signal on. If Ray's own processes die before this one shuts them down (the signal
    reached the whole process group, as the bench's stop sends it), Serve can no longer stop in order; if the
    shutdown wedges, it must not outlive the grace period. Either way: end the tree, clean up, exit."""
    deadline = time.monotonic() + seconds
    status = 1
    while time.monotonic() < deadline:
        if not ray_stopping.is_set() and not all(map(_alive, core)):
            log.warning("Ray's own processes were stopped with this one: ending the rest of the tree")
            status = 0
            break
        time.sleep(0.2)
    else:
        log.error("shutdown did not finish in time: killing what is left of the process tree")
    _kill_what_is_left()
    shutil.rmtree(runtime, ignore_errors=True)
    os._exit(status)


def _adopt_orphans() -> None:
    """Become the child subreaper: a Ray worker whose raylet dies is re-parented here, not to init, so the
    last step of the shutdown still finds (and ends) it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def main() -> None:
    settings = RayServeSettings()
    _append_stderr()
    _adopt_orphans()
    logging.config.dictConfig(log_config(settings.log_level))
    # Ray's session files (logs, sockets, the object store's spill) go here too: nothing is left behind.
    runtime = Path(tempfile.mkdtemp(prefix=f"serving-{settings.variant}-"))
    atexit.register(shutil.rmtree, runtime, ignore_errors=True)
    # Read by Ray when it starts (and inherited by every process it starts): no usage report, no thread pools
    # sized from the machine, the project importable from the replicas, and a token for Ray's own RPCs made
    # for this run (Ray would otherwise write one to ~/.ray, read-only in the image).
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    # Ray's single-machine mode: the node address is the loopback one, with no probe for a routable address.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    project = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))

    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions

    from ray_serving.app import Classifier

    ray.init(
        num_cpus=1,
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        _temp_dir=str(runtime / "ray"),
        configure_logging=False,
        log_to_driver=False,
    )
    core = _ray_core()
    stop, ray_stopping = threading.Event(), threading.Event()

    def on_signal(*_: object) -> None:
        if not stop.is_set():
            guard_args = (core, ray_stopping, settings.graceful_timeout + STOP_MARGIN_SECONDS, runtime)
            threading.Thread(target=_guard_the_stop, args=guard_args, daemon=True).start()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        http_options = HTTPOptions(
            host=settings.host, port=settings.port, keep_alive_timeout_s=settings.keep_alive_timeout
        )
        serve.start(http_options=http_options)
        deployment = serve.deployment(Classifier).options(
            name="classifier",
            num_replicas=settings.workers,
            max_ongoing_requests=UNBOUNDED_ONGOING,
            graceful_shutdown_timeout_s=settings.graceful_timeout,
            graceful_shutdown_wait_loop_s=0.2,
            ray_actor_options={
                "num_cpus": 1 / settings.workers,
                "runtime_env": {"env_vars": _replica_environment(settings, runtime)},
            },
        )
        serve.run(deployment.bind(), name=APP_NAME, route_prefix="/")
        log.info("serving", extra={"port": settings.port, "replicas": settings.workers})
        stop.wait()
        log.info("stopping: draining the replicas, then Serve and Ray")
        serve.delete(APP_NAME)
        serve.shutdown()
    finally:
        ray_stopping.set()
        ray.shutdown()
        _kill_what_is_left()
    sys.exit(0)


if __name__ == "__main__":
    main()
