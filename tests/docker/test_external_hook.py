"""The compose external hook end to end through a real engine: `rust-onnx-serving` (profile `external`),
the real Rust service of external/rust_onnx_serving in the image its offline script builds (the binary built
on the host, in a FROM-scratch image), held to the conformance suite and benchmarked by the compose runner
through docker/external.variants.toml. Compose points its ONNX_MODEL/MODEL_CARD at the read-only mount of
build/artifacts. Each test runs in a compose project of its own and checks that nothing is left running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.probe import NotReadyError, wait_ready
from bench.registry import load_variants_file
from bench.report.aggregate import Table, build_table
from bench.runners.compose import compose_command
from bench.runners.engine import docker, inspect
from bench.runners.local import free_port
from tests.fixtures.conformance import run_conformance_suite
from tests.fixtures.variants import image_variants

pytestmark = [pytest.mark.docker, pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "build" / "artifacts"
SERVED_ARTIFACT = "fused.optimized.onnx"
HOOK_FILE = REPO_ROOT / "docker" / "external.variants.toml"
SERVICE = "rust-onnx-serving"
VARIANT = load_variants_file(HOOK_FILE)[0].name  # the hook's variant, as its registry file names it
CONTAINER_PORT = "8003"
READY_TIMEOUT_S = 120.0
CONTAINER_CHECK_INTERVAL_S = 1.0
# The shortest compare the CLI allows that still runs every collector once.
SHORT_EXTERNAL_COMPARE = [
    "--runner", "compose", "--no-builtin", "--variants-file", "docker/external.variants.toml",
    "--profile", "quick", "--payload", "photo_small", "--levels", "1", "--warmup", "1",
    "--duration", "3", "--repeats", "1", "--startup-runs", "2", "--cold-runs", "1", "--open-runs", "0",
    "--ceiling-iterations", "10",
]  # fmt: skip


RUST_IMAGE_SCRIPT = REPO_ROOT / "external" / "rust_onnx_serving" / "build-image.sh"
RUST_IMAGE_BUILD_TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def rust_image(docker_engine: None) -> str:
    """The Rust service's image from its offline script (cargo reuses a current release build)."""
    if shutil.which("cargo") is None:
        message = "cargo is not on PATH: the Rust service's image cannot be built"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the external hook against it")
        pytest.skip(message)
    tag = "serving-lab/rust-onnx-serving:hook-test"
    done = subprocess.run(
        ["bash", str(RUST_IMAGE_SCRIPT)],
        cwd=REPO_ROOT,
        env={**os.environ, "EXTERNAL_IMAGE": tag},
        capture_output=True,
        text=True,
        timeout=RUST_IMAGE_BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, f"{RUST_IMAGE_SCRIPT.name} failed:\n{done.stderr[-4000:]}"
    return tag


def manifest_sha256() -> str:
    manifest = json.loads((ARTIFACTS_DIR / "manifest.json").read_text())
    return manifest["artifacts"][SERVED_ARTIFACT]["sha256"]


def project_containers(project: str) -> list[str]:
    return docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()


def container_exit(container: str) -> Callable[[], str | None]:
    """For wait_ready: a description once the container has stopped (checked at most once a second)."""
    checked_at = 0.0

    def exited() -> str | None:
        nonlocal checked_at
        if time.monotonic() - checked_at < CONTAINER_CHECK_INTERVAL_S:
            return None
        checked_at = time.monotonic()
        state = inspect("container", container)["State"]
        return f"exit code {state['ExitCode']}" if state["Status"] in {"exited", "dead"} else None

    return exited


@pytest.fixture
def external_project(
    rust_image: str, isolated_compose_project: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An isolated compose project whose `external` profile serves the Rust image on a free host port.

    Yields the project name; the project is taken down at the end (COMPOSE_PROFILES makes `down` see the
    profiled service under both compose implementations) and must then hold no container."""
    mode = ARTIFACTS_DIR.stat().st_mode
    assert mode & 0o005 == 0o005, (
        f"{ARTIFACTS_DIR} (mode {oct(mode & 0o777)}) is not readable by the container's non-root user: "
        "rebuild it with `make artifacts`"
    )
    monkeypatch.setenv("EXTERNAL_IMAGE", rust_image)
    monkeypatch.setenv("EXTERNAL_CONTAINER_PORT", CONTAINER_PORT)
    monkeypatch.setenv("EXTERNAL_PORT", str(free_port()))
    monkeypatch.setenv("COMPOSE_PROFILES", "external")
    # The built-in services are never started here; their image variables only need a value.
    with isolated_compose_project("external", {name: rust_image for name in image_variants()}):
        project = os.environ["COMPOSE_PROJECT_NAME"]
        yield project
    assert not project_containers(project), f"containers left behind in {project}"


def start_external_service(project: str) -> tuple[str, str]:
    """`compose --profile external up -d rust-onnx-serving` alone; (container, base URL) once it is ready."""
    up = subprocess.run(
        [*compose_command(), "-f", str(REPO_ROOT / "compose.yaml"), "--profile", "external",
         "up", "-d", "--no-build", "--no-deps", SERVICE],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr[-3000:]
    containers = docker(
        "ps", "-q", "--no-trunc",
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", f"label=com.docker.compose.service={SERVICE}",
    ).stdout.split()  # fmt: skip
    assert len(containers) == 1, f"expected one {SERVICE} container, found {containers}"
    base_url = f"http://127.0.0.1:{os.environ['EXTERNAL_PORT']}"
    try:
        wait_ready(
            f"{base_url}/ready",
            timeout_s=READY_TIMEOUT_S,
            started_at=time.perf_counter(),
            process_exit=container_exit(containers[0]),
        )
    except NotReadyError as error:
        logs = docker("logs", "--tail", "60", containers[0], check=False)
        pytest.fail(f"{error}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
    return containers[0], base_url


def test_external_service_speaks_the_contract_and_serves_the_mounted_artifact(
    external_project: str, admin_token: str
) -> None:
    container, base_url = start_external_service(external_project)

    settings = inspect("container", container)
    assert settings["Config"]["Image"] == os.environ["EXTERNAL_IMAGE"]
    mounts = {mount["Destination"]: mount for mount in settings["Mounts"]}
    assert mounts["/artifacts"]["Source"] == str(ARTIFACTS_DIR) and mounts["/artifacts"]["RW"] is False
    assert f"ONNX_MODEL=/artifacts/{SERVED_ARTIFACT}" in settings["Config"]["Env"]
    assert f"PORT={CONTAINER_PORT}" in settings["Config"]["Env"]

    # The image has no shell or tools to hash the mount from inside; the service hashes the file it loaded.
    info = httpx.get(f"{base_url}/info", timeout=10).json()
    assert info["runtime"]["artifact_sha256"] == manifest_sha256()
    assert info["variant"] == VARIANT

    output = run_conformance_suite(base_url, admin_token)
    # compose handed ADMIN_TOKEN to the external service too, so the reload check ran instead of skipping.
    assert "no admin token" not in output, output[-3000:]


def figure(table: Table, key: str) -> float:
    cell = table.row(key).cells[VARIANT]
    assert cell.text is None and cell.median is not None, f"{key}: {cell.text}"
    return cell.median


def test_bench_compare_measures_the_external_service_through_compose(
    external_project: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "compare", *SHORT_EXTERNAL_COMPARE, "--results-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert not project_containers(external_project), "the compose runner left containers running"

    run_dir = next(path for path in tmp_path.iterdir() if (path / "run.json").is_file())
    run = json.loads((run_dir / "run.json").read_text())
    assert run["runner"]["runner"] == "compose" and run["runner"]["project"] == external_project
    errors = sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("errors/*.json"))
    assert not errors, errors
    table = build_table(run_dir)
    assert set(table.row("c1.rps").cells) == {VARIANT}, "only the external variant was asked for"

    assert figure(table, "c1.rps") > 0
    assert figure(table, "startup.ready_s") > 0
    assert figure(table, "footprint.image_mb") > 0
    assert figure(table, "accuracy.top1") >= 95.0
    footprint = json.loads((run_dir / "raw" / VARIANT / "footprint.json").read_text())
    assert os.environ["EXTERNAL_IMAGE"] in footprint["image"]["tags"]
