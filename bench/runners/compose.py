"""The compose runner: each variant is its compose service, in a compose project of the bench's own.

`docker compose` (v2) or Debian's `docker-compose` (v1.29), whichever is installed. Per start: compose creates
a fresh container (`up --no-start`), the container is pinned to the service cores, and the start clock runs
from `docker start` to the first 200 on the ready path. The host port is the registered one (or a free one
when that is taken), set through the variable compose.yaml publishes it from (`compose_port_env`); the URL
is always built from the port the engine actually published, so a `.env` cannot point the bench elsewhere.
The project (`BENCH_COMPOSE_PROJECT`, default serving-lab-bench) is never a user's stack, and `close()`
takes it down whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import yaml

from bench.collectors.footprint import artifact_sizes
from bench.interrupt import CLEANUPS, critical
from bench.registry import Variant
from bench.results import not_measured
from bench.runners.base import ResourceSampler, Runner, Service, StartupError
from bench.runners.engine import (
    EngineError,
    container_settings,
    docker,
    engine_socket,
    fat_counterpart_footprint,
    image_exists,
    image_footprint,
    inspect,
    parse_size,
    pick_published_port,
    stats_sampler,
)
from bench.runners.local import free_port, port_is_free

__all__ = ["ComposeRunner", "compose_command", "parse_size"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_ENV = "BENCH_COMPOSE_PROJECT"
DEFAULT_PROJECT = "serving-lab-bench"
STATUS_CHECK_INTERVAL_S = 0.5  # wait_ready polls every 20 ms; `docker inspect` that often would cost a core
COMPOSE_TIMEOUT_S = 600.0
# Cleanup runs within the interrupt's deadline (bench/interrupt.py): `down` stops containers in parallel.
STOP_TIMEOUT_S, DOWN_TIMEOUT_S, LOGS_TIMEOUT_S = 30.0, 40.0, 20.0
BUILD_HINT = (
    "build them with `make docker-images` (`OFFLINE=1 docker/build.sh` where no registry is reachable)"
)
STARTUP_CLOCK = "`docker start` of a container compose created -> first 200 on the ready path"
# A crashed service must show as a failure, not be restarted behind the bench's back.
RUN_ENVIRONMENT = {"RESTART_POLICY": "no"}


def compose_command() -> list[str]:
    """`docker compose` when the v2 plugin answers, else `docker-compose`."""
    docker_cli = shutil.which("docker")
    if docker_cli and subprocess.run([docker_cli, "compose", "version"], capture_output=True).returncode == 0:
        return [docker_cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise StartupError("neither `docker compose` nor `docker-compose` is installed")


@dataclass
class _Container:
    """Runner-private state of one started service."""

    requested_port: int | None
    status_checked_at: float = 0.0


class ComposeRunner(Runner):
    name: ClassVar[str] = "compose"

    def __init__(
        self,
        compose_file: Path = REPO_ROOT / "compose.yaml",
        *,
        project: str | None = None,
        service_cores: list[int] | None = None,
    ) -> None:
        self.compose_file = compose_file.resolve()
        self.project = project or os.environ.get(PROJECT_ENV) or DEFAULT_PROJECT
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.project):
            raise ValueError(f"compose project name {self.project!r}: use lowercase letters, digits, - and _")
        self.service_cores = service_cores
        self.compose = compose_command()
        self._images: dict[str, str | None] | None = None
        self._profiles: list[str] | None = None

    # --- compose and its configuration ---

    def _compose(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout_s: float = COMPOSE_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        profiles = [flag for profile in self._all_profiles() for flag in ("--profile", profile)]
        return self._run_compose([*profiles, *args], env=env, check=check, timeout_s=timeout_s)

    def _run_compose(
        self,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout_s: float = COMPOSE_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.compose, "-f", str(self.compose_file), "-p", self.project, *args]
        done = subprocess.run(
            command,
            cwd=self.compose_file.parent,
            env={**os.environ, **RUN_ENVIRONMENT, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            start_new_session=True,  # like engine.docker: out of reach of signals sent to the bench's group
        )
        if check and done.returncode != 0:
            raise StartupError(f"`compose {' '.join(args)}` failed: {done.stderr.strip()[-2000:]}")
        return done

    def _all_profiles(self) -> list[str]:
        """Every profile of the file: a variant's service may sit under one (the external hook does)."""
        if self._profiles is None:
            listed = self._run_compose(["config", "--profiles"]).stdout.split()
            self._profiles = sorted(set(listed))
        return self._profiles

    def service_images(self) -> dict[str, str | None]:
        """Each service's image reference after interpolation (.env, environment)."""
        if self._images is None:
            document = yaml.safe_load(self._compose("config").stdout) or {}
            self._images = {
                name: spec.get("image") for name, spec in (document.get("services") or {}).items()
            }
        return self._images

    @staticmethod
    def _service_name(variant: Variant) -> str:
        if variant.compose_service is None:
            raise StartupError(f"{variant.name}: no compose_service declared")
        return variant.compose_service

    def unavailable(self, variants: list[Variant]) -> list[str]:
        """Why this runner cannot run some of ``variants`` (empty when it can run them all)."""
        images = self.service_images()
        problems = []
        for variant in variants:
            if variant.is_external_url:
                continue  # measured at its URL, never started
            service = variant.compose_service
            if service is None:
                problems.append(f"{variant.name}: no compose_service declared")
            elif service not in images:
                problems.append(f"{variant.name}: no service {service!r} in {self.compose_file.name}")
            elif images[service] is None:
                problems.append(f"{variant.name}: service {service!r} names no image")
            elif not image_exists(str(images[service])):
                problems.append(f"{variant.name}: image {images[service]} is not built")
        return problems

    # --- the run's lifecycle ---

    def skip_reason(self, variant: Variant) -> str | None:
        """A variant with no compose service (one run only as a local process) is skipped, not failed."""
        return None if variant.compose_service else "no compose_service declared (local runner only)"

    def prepare(self, variants: list[Variant]) -> None:
        problems = self.unavailable(variants)
        if problems:
            hint = f"; {BUILD_HINT}" if any("not built" in problem for problem in problems) else ""
            raise StartupError("the compose runner cannot run: " + "; ".join(problems) + hint)
        self.close()  # containers a killed earlier run left in the bench's project

    def close(self) -> None:
        """Take the bench's project down (idempotent: a second call finds nothing to remove)."""
        self._compose("down", "--remove-orphans", "--timeout", "10", check=False, timeout_s=DOWN_TIMEOUT_S)

    # --- one service ---

    def _host_port(self, variant: Variant) -> int | None:
        """The host port to publish on, when the variant names the variable compose.yaml reads it from."""
        if variant.compose_port_env is None or variant.port is None:
            return None
        return variant.port if port_is_free(variant.port) else free_port()

    def _container_of(self, service_name: str) -> str:
        found = docker(
            "ps", "-a", "-q", "--no-trunc",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service_name}",
        ).stdout.split()  # fmt: skip
        if len(found) != 1:
            raise StartupError(
                f"expected one {service_name} container in project {self.project}, found {found}"
            )
        return found[0]

    def start(self, variant: Variant, *, cold: bool = False, log_path: Path | None = None) -> Service:
        service_name = self._service_name(variant)
        host_port = self._host_port(variant)
        env = {variant.compose_port_env: str(host_port)} if variant.compose_port_env and host_port else {}
        if cold and variant.local is not None:
            env.update(variant.local.cold_env)  # WARMUP=false: compose.yaml passes it into the container
        self._compose(
            "up", "--no-start", "--no-deps", "--no-build", "--force-recreate", service_name, env=env
        )  # fmt: skip
        with critical():
            container = self._container_of(service_name)
            CLEANUPS.add(
                container,
                f"{variant.name} (container {container[:12]}, project {self.project})",
                stop=partial(self._remove_container, container),
                kill=partial(self._remove_container, container),
            )
        try:
            if self.service_cores:
                docker("update", "--cpuset-cpus", ",".join(map(str, self.service_cores)), container)
            spawned_at = time.perf_counter()
            docker("start", container)
            ports = inspect("container", container)["NetworkSettings"].get("Ports") or {}
            port = pick_published_port(ports, host_port)
        except EngineError as error:
            self._remove_container(container)
            raise StartupError(f"{variant.name}: {error}") from error
        return Service(
            variant=variant,
            base_url=f"http://127.0.0.1:{port}",
            spawned_at=spawned_at,
            container=container,
            cores=list(self.service_cores) if self.service_cores else None,
            log_path=log_path,
            handle=_Container(requested_port=host_port),
        )

    def process_exit(self, service: Service) -> str | None:
        state: _Container = service.handle
        if service.container is None or time.monotonic() - state.status_checked_at < STATUS_CHECK_INTERVAL_S:
            return None
        state.status_checked_at = time.monotonic()
        try:
            status = inspect("container", service.container)["State"]
        except EngineError:
            return "container removed"
        if status["Status"] in {"exited", "dead"}:
            return f"container {status['Status']}, exit code {status['ExitCode']}"
        return None

    def stop(self, service: Service) -> None:
        if service.container is None:
            return
        if service.log_path is not None:
            service.log_path.parent.mkdir(parents=True, exist_ok=True)
            with service.log_path.open("w") as log, contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    ["docker", "logs", service.container],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=LOGS_TIMEOUT_S,
                    start_new_session=True,
                )
        docker("stop", "--time", "10", service.container, check=False, timeout=STOP_TIMEOUT_S)
        self._remove_container(service.container)

    @staticmethod
    def _remove_container(container: str) -> None:
        docker("rm", "-f", "-v", container, check=False, timeout=STOP_TIMEOUT_S)
        CLEANUPS.discard(container)

    # --- measurements ---

    def startup_unmeasurable(self, variant: Variant) -> str | None:
        return None if variant.compose_service else "no compose_service declared"

    def resource_sampler(self, service: Service) -> ResourceSampler | str:
        if service.container is None:
            return "no container id"
        return stats_sampler(service.container)

    def footprint(self, variant: Variant, service: Service | None) -> dict[str, Any]:
        if service is None or service.container is None:
            missing = not_measured("no running container to read the image from")
            image, fat_image, settings = missing, missing, missing
        else:
            container = inspect("container", service.container)
            image = image_footprint(container["Image"])
            fat_image = fat_counterpart_footprint(container["Config"]["Image"])
            settings = container_settings(container)
        return {
            "kind": "compose",
            "dependency_closure": not_measured("compose runner: see the image size"),
            "image": image,
            "fat_image": fat_image,
            "container": settings,
            "artifacts": artifact_sizes(variant.artifact_paths),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "runner": self.name,
            "compose": self.compose,
            "compose_file": str(self.compose_file),
            "project": self.project,
            "service_cores": self.service_cores,
            "startup_clock": STARTUP_CLOCK,
            "resources": "engine stats stream" if engine_socket() else "docker stats --no-stream",
        }
