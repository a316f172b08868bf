"""Live-service fixtures: real uvicorn subprocesses on free loopback ports, or any running service by URL.

``SERVING_BASE_URL`` (comma-separated) points the conformance suite at services that are already running,
inside this repo or not; ``SERVING_ADMIN_TOKEN`` is then their admin token, if the reload checks should
authenticate. Without it, every variant of the registry with a ``[variant.local]`` launch
(bench/variants.toml, external/*/variants.toml, BENCH_VARIANTS_FILES; see tests/fixtures/variants.py) is
started from the real default artifacts with its ``[variant.tests]`` workers and env (onnx: 2 workers, so the
multiprocess metrics are exercised), once per test session, and stopped at the end. A variant's
``contract_skips`` skip the tests that do not apply to it, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from bench.registry import Variant
from tests.fixtures.bad_inputs import png_bomb
from tests.fixtures.variants import (
    artifact_variables,
    ensure_startable,
    local_variants,
    prefixed_variables,
    skip_reason_for,
    startable_variants,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = REPO_ROOT / "images"
BASE_URL_ENV = "SERVING_BASE_URL"
ADMIN_TOKEN_ENV = "SERVING_ADMIN_TOKEN"
VARIANTS_ENV = "SERVING_VARIANTS"  # comma-separated registry names: the suite starts only those
WORKERS_VARIABLES = ("WORKERS", "_WORKERS")  # names ending so in a variant's env set its worker count
TEST_ADMIN_TOKEN = "contract-suite-token"
READY_TIMEOUT_SECONDS = 120.0

# The served artifact of each variant, by the variable that names it: MODEL_CHECKPOINT, ONNX_MODEL, ...
DEFAULT_ARTIFACTS = {
    variable: variant.artifact_paths[0] for variable, variant in artifact_variables().items()
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def artifact_path(variable: str) -> Path:
    """The artifact a spawned service will load: the environment's override or the real default."""
    path = Path(os.environ.get(variable) or DEFAULT_ARTIFACTS[variable])
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make artifacts` (make test does) before the live tests")
    return path


def artifacts_environment(variant: Variant | None = None) -> dict[str, str]:
    """The environment that points a spawned service at the real default artifacts (or their overrides):
    every variant's, or only ``variant``'s own."""
    if variant is not None:
        variable = variant.tests.artifact_env
        return {variable: str(artifact_path(variable))} if variable in DEFAULT_ARTIFACTS else {}
    return {variable: str(artifact_path(variable)) for variable in DEFAULT_ARTIFACTS}


@dataclass
class LiveService:
    name: str
    base_url: str
    admin_token: str | None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.process is not None

    def processes(self) -> list[psutil.Process]:
        """The service's process tree: the uvicorn parent and, with several workers, its children."""
        assert self.process is not None, "only services this suite started have a process tree"
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def process_ids(self) -> set[int]:
        return {process.pid for process in self.processes()}

    def resident_bytes(self) -> int:
        """RSS summed over the process tree (shared pages counted once per process: an upper bound)."""
        return sum(process.memory_info().rss for process in self.processes())

    def wait_for_model_everywhere(self, model_hash: str, timeout: float = 30.0) -> None:
        """Until every worker answers with ``model_hash``: fresh connections to /info until ``workers``
        distinct worker pids have reported it (a reload reaches the other workers about half a second later).
        """
        on_model: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(on_model) < self.workers:
            if time.monotonic() > deadline:
                raise AssertionError(f"only workers {on_model} of {self.workers} serve {model_hash}")
            info = httpx.get(f"{self.base_url}/info", timeout=10).json()
            if info["model_hash"] == model_hash:
                on_model.add(info["pid"])
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def _ready_worker_count(base_url: str) -> int:
    """Workers whose model is loaded and warm, from the service's own /metrics (whichever worker answers)."""
    exposition = httpx.get(f"{base_url}/metrics", timeout=5).text
    return sum(
        1
        for line in exposition.splitlines()
        if line.startswith("serving_worker_ready{") and line.endswith(" 1.0")
    )


def wait_until_ready(
    service: LiveService, consecutive: int = 6, timeout: float = READY_TIMEOUT_SECONDS
) -> None:
    """Ready means ``consecutive`` fresh connections in a row got 200 and, for a service this suite started,
    /metrics reports every one of its workers ready (fresh connections alone may all reach the same worker).
    """
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        if service.process is not None and service.process.poll() is not None:
            pytest.fail(
                f"{service.name} exited with {service.process.returncode}:\n{service.log_text()[-3000:]}"
            )
        try:
            ok = httpx.get(f"{service.base_url}/ready", timeout=5).status_code == 200
            streak = streak + 1 if ok else 0
            if streak >= consecutive and (
                not service.local or _ready_worker_count(service.base_url) >= service.workers
            ):
                return
        except httpx.TransportError:
            ok, streak = False, 0
        time.sleep(0.05 if ok else 0.25)
    pytest.fail(f"{service.name} not ready after {timeout:.0f} s:\n{service.log_text()[-3000:]}")


def _service_environment(port: int, workers: int) -> dict[str, str]:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": str(workers),
        "ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }
    for prefixed in (*sorted(prefixed_variables()), "VARIANT", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(prefixed, None)
    return env


def start_service(
    name: str,
    module: str,
    log_dir: Path,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    wait: bool = True,
) -> LiveService:
    """``python -m module`` on a free port (the generic PORT / WORKERS settings)."""
    port = free_port()
    env = {**_service_environment(port, workers), **(extra_env or {})}
    return _spawn(name, [sys.executable, "-m", module], port, workers, env, log_dir, wait=wait)


def start_variant(
    variant: Variant,
    log_dir: Path,
    *,
    name: str | None = None,
    workers: int | None = None,
    extra_env: dict[str, str] | None = None,
    wait: bool = True,
) -> LiveService:
    """A registered variant as the bench starts it (its ``[variant.local]`` command and env, placeholders
    filled), plus its ``[variant.tests]`` env, the suite's admin token and ``extra_env``. ``workers``
    (default: its ``[variant.tests] workers``) also sets the ``WORKERS`` / ``*_WORKERS`` of its env."""
    assert variant.local is not None, f"{variant.name} has no [variant.local] launch"
    ensure_startable(variant)
    port = free_port()
    command, local_env = variant.local.render(port=port, root=variant.root)
    tests_env = {key: value.replace("{port}", str(port)) for key, value in variant.tests.env.items()}
    variant_env = {**local_env, **tests_env}
    if workers is not None:
        variant_env.update({key: str(workers) for key in variant_env if key.endswith(WORKERS_VARIABLES)})
    workers = workers or variant.tests.workers
    env = {
        **_service_environment(port, workers),
        **variant_env,
        **artifacts_environment(variant),
        **(extra_env or {}),
    }
    label = name or variant.name
    return _spawn(label, command, port, workers, env, log_dir, wait=wait, cwd=variant.local_cwd)


def _spawn(
    name: str,
    command: list[str],
    port: int,
    workers: int,
    env: dict[str, str],
    log_dir: Path,
    *,
    wait: bool,
    cwd: Path = REPO_ROOT,
) -> LiveService:
    log_path = log_dir / f"{name}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    service = LiveService(name, f"http://127.0.0.1:{port}", TEST_ADMIN_TOKEN, process, log_path, workers, env)
    if wait:
        try:
            wait_until_ready(service)
        except BaseException:
            service.stop()
            raise
    return service


class ServicePool:
    """Starts each local variant when a test first asks for it; stops them all when the session ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: dict[str, LiveService] = {}

    def get(self, name: str) -> LiveService:
        if name not in self.services:
            if name.startswith(("http://", "https://")):
                self.services[name] = LiveService(name, name.rstrip("/"), os.environ.get(ADMIN_TOKEN_ENV))
            else:
                self.services[name] = start_variant(startable_variants()[name], self.log_dir)
        return self.services[name]

    def close(self) -> None:
        for service in self.services.values():
            with contextlib.suppress(Exception):
                service.stop()


def service_names() -> list[str]:
    """SERVING_BASE_URL's services, else the registry's local variants (SERVING_VARIANTS: those named)."""
    configured = os.environ.get(BASE_URL_ENV, "").strip()
    if configured:
        return [url.strip() for url in configured.split(",") if url.strip()]
    chosen = [name.strip() for name in os.environ.get(VARIANTS_ENV, "").split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(startable_variants()))
    if unknown:
        registered = list(startable_variants())
        raise pytest.UsageError(f"{VARIANTS_ENV}: no local variant {unknown}; registered: {registered}")
    return chosen or list(local_variants())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service_name", service_names(), scope="session")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A variant's ``contract_skips``: the tests that do not apply to it skip with its reason."""
    reason = skip_reason_for(item)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def service_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicePool]:
    pool = ServicePool(tmp_path_factory.mktemp("service-logs"))
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def service(service_pool: ServicePool, service_name: str) -> LiveService:
    return service_pool.get(service_name)


@pytest.fixture(scope="session")
def all_services(service_pool: ServicePool) -> list[LiveService]:
    return [service_pool.get(name) for name in service_names()]


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    return png_bomb()


@pytest.fixture
def start_local_service(tmp_path: Path) -> Iterator[object]:
    """``start(name, module, workers=1, env={...}, wait=True) -> LiveService``; every service started is
    stopped after.
    """
    started: list[LiveService] = []

    def start(
        name: str, module: str, *, workers: int = 1, env: dict[str, str] | None = None, wait: bool = True
    ) -> LiveService:
        service = start_service(name, module, tmp_path, workers=workers, extra_env=env, wait=wait)
        started.append(service)
        return service

    yield start
    for service in started:
        with contextlib.suppress(Exception):
            service.stop()


@pytest.fixture
def start_registered_variant(tmp_path: Path) -> Iterator[object]:
    """``start(variant_name, name=None, workers=None, env={...}, wait=True) -> LiveService``: a variant
    as the bench starts it (see ``start_variant``), skipped with the reason when it cannot be started here;
    every service started is stopped after."""
    started: list[LiveService] = []

    def start(
        variant_name: str,
        *,
        name: str | None = None,
        workers: int | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> LiveService:
        variant = startable_variants()[variant_name]
        service = start_variant(variant, tmp_path, name=name, workers=workers, extra_env=env, wait=wait)
        started.append(service)
        return service

    yield start
    for service in started:
        with contextlib.suppress(Exception):
            service.stop()


@pytest.fixture(scope="session")
def wait_ready() -> object:
    return wait_until_ready


@pytest.fixture(scope="session")
def artifact_env() -> dict[str, str]:
    return artifacts_environment()


@pytest.fixture(scope="session")
def default_artifact() -> object:
    """``default_artifact("ONNX_MODEL" | "MODEL_CHECKPOINT") -> Path``: the real artifact services load."""
    return artifact_path
