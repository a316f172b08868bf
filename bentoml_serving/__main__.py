"""``python -m bentoml_serving``: BentoML's HTTP server for ``service.Classifier`` on HOST:PORT (its circus
arbiter, this process, and WORKERS uvicorn worker processes), telemetry off, BentoML's home in a fresh
temporary directory (it holds BentoML's metrics files, which two services must not share, and the directory
where the workers tell each other about a reload).

SIGTERM or SIGINT: the listening socket is closed here first, so new connections are refused at once
(BentoML's own stop closes it only after every worker has drained), then BentoML stops its workers, which
finish the requests they hold for up to GRACEFUL_TIMEOUT.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from bentoml_serving.settings import BentoServingSettings
from serving_core.settings import RUNTIME_DIR_ENV

POLL_SECONDS = 0.5


def main() -> None:
    settings = BentoServingSettings()
    home = tempfile.mkdtemp(prefix=f"serving-{settings.variant}-home-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    # Read when bentoml is imported, and inherited by its workers.
    os.environ["BENTOML_HOME"] = home
    os.environ["BENTOML_DO_NOT_TRACK"] = "true"
    # Where the workers tell each other about a reload (serving_core.model_holder); BentoML itself sets
    # PROMETHEUS_MULTIPROC_DIR for them, which serving_core's metrics share.
    runtime = Path(home) / "serving"
    runtime.mkdir()
    os.environ[RUNTIME_DIR_ENV] = str(runtime)
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))

    from _bentoml_impl.server import serve_http

    from bentoml_serving.service import Classifier

    stop = threading.Event()
    Classifier.inject_config()  # the service's config into BentoML's, as `bentoml serve` does
    server = serve_http(
        Classifier,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=settings.graceful_timeout,
        timeout_keep_alive=settings.keep_alive_timeout,
        threaded=True,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(POLL_SECONDS):
        if not server.running:
            sys.exit(1)
    for listener in server.arbiter.sockets.values():
        listener.close()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
