"""The one uvicorn entry point every variant's ``__main__`` calls.

It prepares what must exist before the workers start: the Prometheus multiprocess directory (a fresh temporary
one when ``PROMETHEUS_MULTIPROC_DIR`` is unset, so several workers report correct totals) and the runtime
directory the workers use to tell each other about reloads. Then it hands over to uvicorn with JSON logging
and a graceful-shutdown timeout, on uvicorn's httptools protocol with a lingering close
(``serving_core.lingering``): a client that sends its whole body before reading gets an early 413, no reset.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from serving_core.jsonlog import log_config
from serving_core.lingering import LingeringHttpToolsProtocol

# Nothing that imports prometheus_client may be imported here: it picks its storage mode (in-process or
# multiprocess files) at import time, so the worker must import it only after PROMETHEUS_MULTIPROC_DIR is set.
from serving_core.settings import MULTIPROC_ENV, RUNTIME_DIR_ENV, ServingSettings


def _prepare_runtime_dirs(settings: ServingSettings) -> None:
    runtime = Path(tempfile.mkdtemp(prefix=f"serving-{settings.variant}-"))
    atexit.register(shutil.rmtree, runtime, ignore_errors=True)
    os.environ[RUNTIME_DIR_ENV] = str(runtime)
    metrics_dir = settings.prometheus_multiproc_dir or runtime / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):  # samples of a previous run would be summed into this one
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(metrics_dir)


class _ClosingSupervisor(Multiprocess):
    """uvicorn's multi-worker supervisor, except that on SIGTERM or SIGINT it first closes its own copy of the
    listening socket. uvicorn's keeps it open until every worker has drained, so the kernel goes on accepting
    connections that no worker will ever serve: clients hang instead of being refused.
    """

    def _stop_listening(self) -> None:
        for listener in self.sockets:
            listener.close()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()


def serve(app_import_path: str, settings: ServingSettings) -> None:
    """Run ``app_import_path`` (e.g. ``"foo_serving.app:app"``) under uvicorn as ``settings`` say.

    On SIGTERM the service stops accepting connections at once, lets the requests in flight finish for up to
    ``GRACEFUL_TIMEOUT`` seconds, then exits.
    """
    _prepare_runtime_dirs(settings)
    # Native libraries that size their own pools from the core count would oversubscribe the workers.
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    config = uvicorn.Config(
        app_import_path,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=LingeringHttpToolsProtocol,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=settings.graceful_timeout,
        timeout_keep_alive=settings.keep_alive_timeout,
        proxy_headers=False,
        server_header=False,
    )
    if config.workers > 1:
        _ClosingSupervisor(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
