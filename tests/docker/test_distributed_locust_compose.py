"""compose's `loadtest` profile (locust-master + two locust-worker containers) delivers the same throughput as
one Locust container against the onnx-serving container.

The same fair comparison as tests/e2e/test_distributed_locust.py (read its docstring): the bench's user class
paced to ``USERS / PACING_S`` requests per second, far below what the service (1 CPU, compose's limit) and a
generator (1 CPU per locust-worker container, compose's limit) can do, alternating single and distributed
runs, throughput from the steady middle of Locust's per-second buckets. compose.yaml's services run as
written (image, command, ``LOCUST_OPTIONS``, ``--scale locust-worker=2``); an override file only swaps the
locustfile for the paced one (same user class, mounted read-only) and mounts a folder for the JSON stats.
The single generator is `compose run locust-worker` with headless options instead of ``--worker``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bench.runners.compose import compose_command
from bench.runners.local import free_port
from tests.fixtures.distributed_locust import PACED_LOCUSTFILE, PACING_S, RUN_S, USERS, compare_generators
from tests.fixtures.variants import image_variants

pytestmark = [pytest.mark.docker, pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
IMAGE_PREFIX = "serving-lab"
WORKERS = 2
TARGET = "http://onnx-serving:8002"  # compose's default LOCUST_TARGET_HOST, on the project's network
PAYLOAD_IMAGE = "images/digits/00000.png"  # in the locust image's /app
RUN_TIMEOUT_S = RUN_S + 120
READY_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def locust_images(image_build: Callable[..., None]) -> dict[str, str]:
    """onnx's slim image and the Locust image (docker/build.sh reuses an image whose inputs are unchanged)."""
    image_build("onnx", "locust")
    # compose_project wants an image per variant; only onnx-serving is started here
    return {name: variant.image_tag("slim", IMAGE_PREFIX) for name, variant in image_variants().items()}


class LoadtestProject:
    """compose.yaml plus an override, in the isolated project the fixture set up."""

    def __init__(self, tmp_path: Path) -> None:
        self.paced = tmp_path / "paced"
        self.results = tmp_path / "results"
        self.paced.mkdir()
        self.results.mkdir()
        (self.paced / "paced_locustfile.py").write_text(PACED_LOCUSTFILE)
        # the containers run as the image's own user (uid 10001), not as the test's
        self.paced.chmod(0o755)
        self.results.chmod(0o777)
        mounts = [f"{self.paced}:/paced:ro", f"{self.results}:/results"]
        override = {
            service: {
                "entrypoint": ["locust", "-f", "/paced/paced_locustfile.py"],
                "volumes": mounts,
                "environment": {"BENCH_PACING_S": str(PACING_S)},
            }
            for service in ("locust-master", "locust-worker")
        }
        self.override = tmp_path / "compose.override.yaml"
        self.override.write_text(yaml.safe_dump({"services": override}))
        self.command = [
            *compose_command(),
            "--profile",
            "loadtest",
            "-f",
            str(COMPOSE_FILE),
            "-f",
            str(self.override),
        ]

    def compose(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [*self.command, *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        assert done.returncode == 0, (
            f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
        return done.stdout

    def stats(self, name: str) -> list[dict[str, Any]]:
        return json.loads((self.results / name / "stats.json").read_text())

    def headless(self, name: str) -> list[str]:
        return [
            "--headless",
            "-u",
            str(USERS),
            "-r",
            str(USERS / PACING_S),
            "-t",
            f"{RUN_S}s",
            "--only-summary",
            "--json-file",
            f"/results/{name}/stats",
        ]

    def single(self, name: str) -> list[dict[str, Any]]:
        self.compose(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "locust-worker",
            *self.headless(name),
            "-H",
            TARGET,
            timeout=RUN_TIMEOUT_S,
        )
        return self.stats(name)

    def distributed(self, name: str) -> list[dict[str, Any]]:
        options = ["--expect-workers", str(WORKERS), "--expect-workers-max-wait", "60", *self.headless(name)]
        env = {"LOCUST_OPTIONS": " ".join(options)}
        self.compose(
            "up", "-d", "--scale", f"locust-worker={WORKERS}", "locust-master", "locust-worker", env=env
        )
        try:
            master = self.compose("ps", "-q", "locust-master", env=env).split()
            assert len(master) == 1, master
            waited = subprocess.run(
                ["docker", "wait", master[0]],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
            if waited.stdout.strip() != "0":
                logs = subprocess.run(
                    ["docker", "logs", master[0]], capture_output=True, text=True, check=False
                )
                raise AssertionError(f"locust-master exited {waited.stdout.strip()}:\n{logs.stderr[-3000:]}")
        finally:
            self.compose("rm", "--stop", "--force", "locust-master", "locust-worker", env=env)
        return self.stats(name)

    def down(self) -> None:
        subprocess.run(
            [*self.command, "down", "--remove-orphans", "--timeout", "10"],
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=300,
            check=False,
        )


def wait_ready(url: str, timeout: float = READY_TIMEOUT_S) -> None:
    with httpx.Client(timeout=5) as client:
        for _ in range(int(timeout / 0.5)):
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{url}/ready").status_code == 200:
                    return
            time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout:.0f} s")


@pytest.fixture
def loadtest(
    locust_images: dict[str, str],
    isolated_compose_project: Callable[[str, dict[str, str]], contextlib.AbstractContextManager[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[LoadtestProject, str]]:
    """onnx-serving up and ready in a project of its own; yields the project and the service's host URL."""
    with isolated_compose_project("loadtest", locust_images) as variants:
        monkeypatch.setenv("LOCUST_WEB_PORT", str(free_port()))
        monkeypatch.setenv("BENCH_PAYLOAD_IMAGE", PAYLOAD_IMAGE)
        monkeypatch.setenv("BENCH_PAYLOAD_FORMAT", "json")
        monkeypatch.setenv("BENCH_PREDICT_PATH", "/predict")
        project = LoadtestProject(tmp_path)
        try:
            project.compose("up", "-d", "--no-deps", "onnx-serving")
            url = f"http://127.0.0.1:{variants['onnx'].port}"
            wait_ready(url)
            yield project, url
        finally:
            project.down()


def test_compose_loadtest_profile_gives_the_throughput_of_one_locust_container(
    loadtest: tuple[LoadtestProject, str],
) -> None:
    project, _ = loadtest
    compare_generators(
        lambda name, mode: project.single(name) if mode == "single" else project.distributed(name), "compose"
    )
