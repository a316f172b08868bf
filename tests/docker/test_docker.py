"""The images and compose.yaml through a real Docker engine: offline builds, conformance per container,
footprints, container start-up times. Everything goes through the bench's compose runner and collectors."""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.collectors.startup import measure_startup
from bench.payloads import load_payload
from bench.registry import PayloadFormat
from bench.runners.base import Service
from bench.runners.compose import ComposeRunner, compose_command
from tests.fixtures.conformance import run_conformance_suite
from tests.fixtures.variants import image_variants

# The first test that needs the images pays for the offline build (minutes on a fresh machine) in its setup.
pytestmark = [pytest.mark.docker, pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(3600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING_VARIANTS = tuple(image_variants())  # every variant with an image, from the registry
STARTUP_RUNS = 3
COMPILERS = {"gcc", "cc", "make"}
SERVED_ARTIFACT = {name: variant.artifact_paths[0] for name, variant in image_variants().items()}
HEALTHY_TIMEOUT_S = 60.0


def docker_json(*args: str) -> Any:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_compose_file_is_valid_for_every_profile(docker_engine: None) -> None:
    command = [*compose_command(), "-f", str(REPO_ROOT / "compose.yaml")]
    done = subprocess.run(
        [*command, "--profile", "external", "--profile", "loadtest", "config", "--services"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == {
        "torch-serving",
        "onnx-serving",
        "onnx-fast-serving",
        "openvino-serving",
        "ray-serve-serving",
        "bentoml-serving",
        "rust-onnx-serving",
        "locust-master",
        "locust-worker",
    }


@pytest.mark.parametrize("variant", SERVING_VARIANTS)
def test_slim_image_is_non_root_exec_form_with_a_ready_healthcheck(
    built_images: dict[str, dict[str, str]], variant: str
) -> None:
    config = docker_json("image", "inspect", built_images[variant]["slim"])[0]["Config"]
    assert config["User"] == "serving"
    # One image build for every variant: the exec-form CMD execs `python -m <package>` (PID 1, see below).
    assert config["Cmd"] == ["python", "docker/serve.py"]
    assert f"SERVING_PACKAGE={image_variants()[variant].python_package}" in config["Env"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "docker/healthcheck.py"]
    probe = subprocess.run(
        ["docker", "run", "--rm", built_images[variant]["slim"], "id", "-u"], capture_output=True, text=True
    )
    assert probe.returncode == 0 and probe.stdout.strip() != "0", probe.stderr


def test_onnx_image_carries_no_torch(built_images: dict[str, dict[str, str]]) -> None:
    script = (
        "import importlib.util as u; print([m for m in ('torch', 'onnx', 'onnxruntime') if u.find_spec(m)])"
    )
    done = subprocess.run(
        ["docker", "run", "--rm", built_images["onnx"]["slim"], "python", "-c", script],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['onnxruntime']"


@pytest.mark.parametrize("variant", SERVING_VARIANTS)
def test_container_becomes_healthy_with_limits_applied(stack: dict[str, Service], variant: str) -> None:
    container = stack[variant].container
    assert container is not None
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    status = "unknown"
    while time.monotonic() < deadline:
        status = docker_json("inspect", container)[0]["State"]["Health"]["Status"]
        if status == "healthy":
            break
        time.sleep(1)
    assert status == "healthy"
    pid1 = subprocess.run(
        ["docker", "exec", container, "cat", "/proc/1/cmdline"], capture_output=True, text=True, check=True
    ).stdout.split("\0")
    assert pid1[:3] == ["python", "-m", f"{image_variants()[variant].python_package}"], pid1
    host_config = docker_json("inspect", container)[0]["HostConfig"]
    assert host_config["NanoCpus"] == 1_000_000_000
    assert host_config["Memory"] > 0
    assert host_config["ReadonlyRootfs"] is True


@pytest.mark.parametrize("variant", SERVING_VARIANTS)
def test_info_reports_the_sha256_of_the_served_artifact(stack: dict[str, Service], variant: str) -> None:
    info = httpx.get(stack[variant].url("/info"), timeout=10).json()
    assert info["runtime"]["artifact_sha256"] == sha256_file(SERVED_ARTIFACT[variant])
    assert info["variant"] == variant


def test_conformance_suite_passes_against_every_container(
    stack: dict[str, Service], admin_token: str
) -> None:
    run_conformance_suite(",".join(service.base_url for service in stack.values()), admin_token)


def test_slim_and_dev_images_footprint(
    built_images: dict[str, dict[str, str]],
    isolated_compose_project: Any,
    tmp_path: Path,
    measurements: dict[str, Any],
) -> None:
    """Size, layers and tools present of every image, read by the compose runner from a running container."""
    footprints: dict[str, dict[str, Any]] = {}
    for flavour in ("slim", "dev"):
        # A variant without this flavour keeps a slim tag for compose's variable; it is not started.
        images = {name: tags.get(flavour, tags["slim"]) for name, tags in built_images.items()}
        with isolated_compose_project(f"footprint-{flavour}", images) as variants:
            runner = ComposeRunner(REPO_ROOT / "compose.yaml")
            for name, variant in variants.items():
                if flavour not in built_images[name]:
                    continue
                service = runner.start_ready(variant, log_path=tmp_path / f"{name}-{flavour}.log")
                try:
                    footprints[f"{name}:{flavour}"] = runner.footprint(variant, service)["image"]
                finally:
                    runner.stop(service)
    measurements["images"] = footprints
    with_dev = [name for name in SERVING_VARIANTS if "dev" in built_images[name]]
    assert {"torch", "onnx"} <= set(with_dev), with_dev  # the fat-vs-slim comparison the report shows
    for name in SERVING_VARIANTS:
        slim = footprints[f"{name}:slim"]
        assert built_images[name]["slim"] in slim["tags"], slim["tags"]
        assert "sh" in slim["tools"], slim["tools"]  # the probe itself ran
        assert not COMPILERS & set(slim["tools"]), slim["tools"]
    for name in with_dev:
        slim, dev = footprints[f"{name}:slim"], footprints[f"{name}:dev"]
        assert built_images[name]["dev"] in dev["tags"]
        assert slim["size_bytes"] < dev["size_bytes"]
        assert set(dev["tools"]) >= COMPILERS | {"pip"}, dev["tools"]
    assert footprints["onnx:slim"]["size_bytes"] < footprints["torch:slim"]["size_bytes"]


@pytest.mark.parametrize("variant", SERVING_VARIANTS)
def test_container_startup_time(
    built_images: dict[str, dict[str, str]],
    isolated_compose_project: Any,
    tmp_path: Path,
    measurements: dict[str, Any],
    variant: str,
) -> None:
    """Launch -> first 200 on /ready, STARTUP_RUNS fresh containers, through the bench's startup collector."""
    images = {name: tags["slim"] for name, tags in built_images.items()}
    with isolated_compose_project(f"startup-{variant}", images) as variants:
        runner = ComposeRunner(REPO_ROOT / "compose.yaml")
        payload = load_payload("photo_small", PayloadFormat.JSON)
        result = measure_startup(
            runner,
            variants[variant],
            payload,
            runs=STARTUP_RUNS,
            cold_runs=0,
            warm_requests=0,
            log_dir=tmp_path,
        )
    ready_s = result["ready_s"]
    assert len(ready_s) == STARTUP_RUNS and all(seconds > 0 for seconds in ready_s)
    assert len(result["first_request_ms"]) == STARTUP_RUNS
    measurements.setdefault("startup", {})[variant] = {
        "image": images[variant],
        "ready_s": ready_s,
        "median_ready_s": statistics.median(ready_s),
        "first_request_ms": result["first_request_ms"],
    }
