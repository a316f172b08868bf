"""The compose runner: each variant is its compose service, measured through the Docker engine.

A skeleton completed with the Docker issue: it starts and stops services with `docker compose` (v2) or
Debian's `docker-compose` (v1.29), samples `docker stats`, and reads image size, layer count and tools
present from the engine. Ports come from the registry (compose.yaml publishes each variant on its port).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from bench.collectors.footprint import artifact_sizes
from bench.registry import Variant
from bench.results import not_measured
from bench.runners.base import ResourceSampler, Runner, Service, StartupError

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_TO_PROBE = ("sh", "bash", "apt-get", "dpkg", "pip", "gcc", "cc", "make", "curl", "wget", "git")
_UNITS = {"b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1024**2, "gb": 1e9, "gib": 1024**3}


def compose_command() -> list[str]:
    """`docker compose` when the v2 plugin answers, else `docker-compose`."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise StartupError("neither `docker compose` nor `docker-compose` is installed")


def parse_size(text: str) -> float:
    """Docker's human sizes ("12.5MiB", "1.2GB") in bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if match is None:
        raise ValueError(f"not a docker size: {text!r}")
    return float(match[1]) * _UNITS[match[2].lower() or "b"]


class DockerStatsSampler:
    """CPU% and memory of one container from `docker stats --no-stream` on a background thread."""

    def __init__(self, container: str, interval_s: float = 1.0) -> None:
        self.container = container
        self.interval_s = interval_s
        self._samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> list[dict[str, float]]:
        self._stop.set()
        self._thread.join(timeout=30)
        return list(self._samples)

    def _run(self) -> None:
        while not self._stop.is_set():
            done = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{json .}}", self.container],
                capture_output=True,
                text=True,
            )
            if done.returncode == 0 and done.stdout.strip():
                stats = json.loads(done.stdout.strip().splitlines()[0])
                self._samples.append(
                    {
                        "t_s": time.perf_counter() - self._t0,
                        "t_unix": time.time(),
                        "cpu_percent": float(stats["CPUPerc"].rstrip("%")),
                        "rss_bytes": parse_size(stats["MemUsage"].split("/")[0]),
                    }
                )
            self._stop.wait(self.interval_s)


class ComposeRunner(Runner):
    name: ClassVar[str] = "compose"

    def __init__(self, compose_file: Path = REPO_ROOT / "compose.yaml") -> None:
        self.compose_file = compose_file
        self.compose = compose_command()

    def _compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.compose, "-f", str(self.compose_file), *args], capture_output=True, text=True, check=check
        )

    def _service_name(self, variant: Variant) -> str:
        if variant.compose_service is None:
            raise StartupError(f"{variant.name}: no compose_service declared")
        return variant.compose_service

    def start(self, variant: Variant, *, cold: bool = False, log_path: Path | None = None) -> Service:
        service_name = self._service_name(variant)
        # Cold starts need the variant's cold_env inside the container: compose.yaml reads WARMUP from
        # the environment it is run with.
        cold_env = dict(variant.local.cold_env) if cold and variant.local else {}
        spawned_at = time.perf_counter()
        up = subprocess.run(
            [
                *self.compose,
                "-f",
                str(self.compose_file),
                "up",
                "-d",
                "--no-deps",
                "--force-recreate",
                service_name,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **cold_env},
        )
        if up.returncode != 0:
            raise StartupError(f"{variant.name}: compose up failed: {up.stderr.strip()[-2000:]}")
        container = self._compose("ps", "-q", service_name).stdout.strip() or None
        return Service(
            variant=variant,
            base_url=f"http://127.0.0.1:{variant.port}",
            spawned_at=spawned_at,
            container=container,
            log_path=log_path,
        )

    def stop(self, service: Service) -> None:
        service_name = self._service_name(service.variant)
        if service.log_path is not None:
            logs = self._compose("logs", "--no-color", service_name, check=False).stdout
            service.log_path.parent.mkdir(parents=True, exist_ok=True)
            service.log_path.write_text(logs)
        self._compose("rm", "-s", "-f", service_name, check=False)

    def startup_unmeasurable(self, variant: Variant) -> str | None:
        return None if variant.compose_service else "no compose_service declared"

    def resource_sampler(self, service: Service) -> ResourceSampler | str:
        if service.container is None:
            return "compose did not report a container id"
        return DockerStatsSampler(service.container)

    def footprint(self, variant: Variant, service: Service | None) -> dict[str, Any]:
        image = not_measured("no running container to read the image from")
        if service is not None and service.container is not None:
            image = self._image_footprint(service.container)
        return {
            "kind": "compose",
            "dependency_closure": not_measured("compose runner: see the image size"),
            "image": image,
            "artifacts": artifact_sizes(variant.artifact_paths),
        }

    def _image_footprint(self, container: str) -> dict[str, Any]:
        image_id = subprocess.run(
            ["docker", "inspect", "--format", "{{.Image}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        inspected = json.loads(
            subprocess.run(
                ["docker", "image", "inspect", image_id], capture_output=True, text=True, check=True
            ).stdout
        )[0]
        probe = " ".join(TOOLS_TO_PROBE)
        tools = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--entrypoint",
                "/bin/sh",
                image_id,
                "-c",
                # `exit 0`: else the last probe's status ends the loop and a missing tool voids the list
                f'for t in {probe}; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; exit 0',
            ],
            capture_output=True,
            text=True,
        )
        return {
            "image_id": image_id,
            "tags": inspected.get("RepoTags", []),
            "size_bytes": inspected.get("Size"),
            "layers": len(inspected.get("RootFS", {}).get("Layers", [])),
            "tools": tools.stdout.split() if tools.returncode == 0 else [],
            "has_shell": tools.returncode == 0,
        }

    def describe(self) -> dict[str, Any]:
        return {"runner": self.name, "compose": self.compose, "compose_file": str(self.compose_file)}
