"""Real-engine fixtures: offline image builds (once per session), compose projects, the compose runner.

Outside CI these tests skip with a clear message when no Docker engine answers; with ``CI`` set they fail.
Each compose project is isolated (its own project name, free host ports): a developer's stack is not touched.
Figures measured here (image sizes, layers, tools, startup times) go to ``results/docker/measurements.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.registry import Variant, load_registry
from bench.runners.base import Service
from bench.runners.compose import ComposeRunner, compose_command
from tests.fixtures.variants import compose_image_variable, image_variants

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_VARIANTS = image_variants()  # every variant the Python image build makes, in registry order
SERVING_VARIANTS = tuple(IMAGE_VARIANTS)
IMAGE_PREFIX = "serving-lab"
PROJECT_NAME = "serving-lab-test"
ADMIN_TOKEN = "docker-suite-token"
BUILD_TIMEOUT_S = 3000
MEASUREMENTS_FILE = REPO_ROOT / "results" / "docker" / "measurements.json"


def engine_answers() -> bool:
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_tag(variant: str, flavour: str) -> str:
    return IMAGE_VARIANTS[variant].image_tag(flavour, IMAGE_PREFIX)


def image_variable(variant: str) -> str:
    return compose_image_variable(IMAGE_VARIANTS[variant])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if engine_answers():
        return
    message = "no Docker engine answers (`docker info` failed): start one with `docker/engine.sh` (as root)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; the Docker tests never skip in CI")
    pytest.skip(message)


def build_images(*variants: str) -> None:
    """The images of ``variants`` (their registry flavours; ``locust``: the Locust image) from docker/build.sh
    (offline unless DOCKER_TEST_OFFLINE=0).

    The script reuses an image whose inputs are unchanged, so a second session costs seconds."""
    env = {**os.environ, "OFFLINE": os.environ.get("DOCKER_TEST_OFFLINE", "1"), "IMAGE_PREFIX": IMAGE_PREFIX}
    done = subprocess.run(
        ["bash", "docker/build.sh", *variants],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, f"docker/build.sh failed:\n{done.stderr[-4000:]}"


@pytest.fixture(scope="session")
def image_build(docker_engine: None) -> Callable[..., None]:
    """``build_images`` for a test that needs only some images (``image_build("onnx", "locust")``)."""
    return build_images


@pytest.fixture(scope="session")
def built_images(docker_engine: None) -> dict[str, dict[str, str]]:
    """Every serving variant's images: slim, and dev where its ``[variant.image] flavours`` lists it."""
    build_images(*SERVING_VARIANTS)
    return {
        variant: {flavour: image_tag(variant, flavour) for flavour in IMAGE_VARIANTS[variant].image.flavours}
        for variant in SERVING_VARIANTS
    }


@contextlib.contextmanager
def compose_project(suffix: str, images: dict[str, str]) -> Iterator[dict[str, Variant]]:
    """A compose project of its own (name, free host ports, the given image per variant) for the block.

    Yields the registry's image variants (torch, onnx) moved to those ports; the environment that compose.yaml
    and the bench's compose runner read is set to match, and the project is taken down at the end."""
    ports = {variant: free_port() for variant in SERVING_VARIANTS}
    environment = {
        "COMPOSE_PROJECT_NAME": f"{PROJECT_NAME}-{suffix}",
        "BENCH_COMPOSE_PROJECT": f"{PROJECT_NAME}-{suffix}",  # the compose runner's project
        **{str(IMAGE_VARIANTS[name].compose_port_env): str(port) for name, port in ports.items()},
        **{image_variable(name): images[name] for name in SERVING_VARIANTS},
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "RESTART_POLICY": "no",
    }
    registry = {variant.name: variant for variant in load_registry()}
    variants = {name: registry[name].model_copy(update={"port": ports[name]}) for name in SERVING_VARIANTS}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        try:
            yield variants
        finally:
            compose_down()


def compose_down() -> None:
    subprocess.run(
        [
            *compose_command(),
            "-f",
            str(REPO_ROOT / "compose.yaml"),
            "down",
            "--remove-orphans",
            "--timeout",
            "10",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="session")
def isolated_compose_project() -> Callable[
    [str, dict[str, str]], contextlib.AbstractContextManager[dict[str, Variant]]
]:
    """``isolated_compose_project(suffix, {variant: image})``: see ``compose_project``."""
    return compose_project


@pytest.fixture(scope="session")
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture(scope="session")
def compose_variants(built_images: dict[str, dict[str, str]]) -> Iterator[dict[str, Variant]]:
    """The project the conformance checks run against: slim images, one session-long stack."""
    with compose_project("stack", {name: tags["slim"] for name, tags in built_images.items()}) as variants:
        yield variants


@pytest.fixture(scope="session")
def compose_runner(compose_variants: dict[str, Variant]) -> ComposeRunner:
    return ComposeRunner(REPO_ROOT / "compose.yaml")


@pytest.fixture(scope="session")
def stack(
    compose_runner: ComposeRunner,
    compose_variants: dict[str, Variant],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Service]]:
    """Every serving variant up through compose (slim images) and ready; stopped at the end of the session."""
    log_dir = tmp_path_factory.mktemp("compose-logs")
    services: dict[str, Service] = {}
    try:
        for name, variant in compose_variants.items():
            services[name] = compose_runner.start_ready(variant, log_path=log_dir / f"{name}.log")
        yield services
    finally:
        for service in services.values():
            compose_runner.stop(service)


@pytest.fixture(scope="session")
def measurements() -> Iterator[dict[str, Any]]:
    """Figures the Docker tests measured, written out at the end of the session."""
    found: dict[str, Any] = {}
    yield found
    if found:
        MEASUREMENTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        MEASUREMENTS_FILE.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
