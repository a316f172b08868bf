"""What the compose runner reads from the Docker engine: containers, published ports, stats, image footprints.

Container CPU and memory come from the engine's stats stream (`GET /containers/<id>/stats`, one reading per
second over the engine's Unix socket, the figures `docker stats` shows); where the engine is not reachable
through a Unix socket (a TCP `DOCKER_HOST`), `docker stats --no-stream` is polled instead.

Why the docker CLI and not the Docker SDK (`docker` on PyPI) or python-on-whales: the compose runner drives
compose, which neither does here (the SDK has no compose; python-on-whales wraps only the v2 `docker compose`
plugin, and CI's machines have Debian's `docker-compose` 1.29), so the CLI stays either way; what is left for
an SDK is a handful of one-line calls (ps, inspect, update, start, stop, rm, logs, a probe run) and the stats
stream, whose CPU and memory formulas an SDK does not provide either. Swapping would add a dependency chain
(docker, requests, urllib3) and a second way of reaching the engine beside compose's, for no shorter code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.results import not_measured

DEFAULT_SOCKET = Path("/var/run/docker.sock")
# Shell, package managers, pip, compilers, fetchers: what separates a fat image from a slim one.
TOOLS_TO_PROBE = (
    "sh", "bash", "apt-get", "dpkg", "apk", "pip", "pip3", "gcc", "cc", "g++", "make", "curl", "wget", "git",
)  # fmt: skip
SLIM_TAG_SUFFIX, FAT_TAG_SUFFIX = ":slim", ":dev"
_UNITS = {"b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1024**2, "gb": 1e9, "gib": 1024**3}


class EngineError(RuntimeError):
    """A docker command failed."""


def docker(*args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """One docker CLI call, in a session of its own: a signal sent to the bench's process group must not end
    the `docker stop` of its cleanup (the bench kills a call it abandons itself)."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, start_new_session=True
    )
    if check and done.returncode != 0:
        raise EngineError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-1500:]}")
    return done


def inspect(kind: str, reference: str) -> dict[str, Any]:
    """`docker <kind> inspect` of one container or image, parsed."""
    return json.loads(docker(kind, "inspect", reference).stdout)[0]


def image_exists(reference: str) -> bool:
    return docker("image", "inspect", reference, check=False).returncode == 0


def pick_published_port(ports: dict[str, list[dict[str, str]] | None], wanted: int | None) -> int:
    """The host port a container is reached on, from its ``NetworkSettings.Ports``.

    ``wanted``: the host port the runner asked compose to publish; otherwise the one published port."""
    host_ports = sorted(
        {int(binding["HostPort"]) for bindings in ports.values() if bindings for binding in bindings}
    )
    if wanted is not None and wanted in host_ports:
        return wanted
    if len(host_ports) == 1:
        return host_ports[0]
    raise EngineError(
        f"cannot tell which published port serves the variant: {host_ports or 'none published'}"
        + (f" (asked for {wanted})" if wanted is not None else "")
    )


def parse_size(text: str) -> float:
    """Docker's human sizes ("12.5MiB", "1.2GB") in bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if match is None:
        raise ValueError(f"not a docker size: {text!r}")
    return float(match[1]) * _UNITS[match[2].lower() or "b"]


def cpu_percent(stats: dict[str, Any]) -> float | None:
    """CPU% of one stats reading (100 = one core), docker stats' formula; None for the first reading."""
    now, before = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    if "system_cpu_usage" not in now or "system_cpu_usage" not in before:
        return None
    system_delta = now["system_cpu_usage"] - before["system_cpu_usage"]
    if system_delta <= 0:
        return None
    cpu_delta = now["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
    online = now.get("online_cpus") or len(now["cpu_usage"].get("percpu_usage") or [1])
    return max(cpu_delta, 0) / system_delta * online * 100.0


def memory_in_use(memory_stats: dict[str, Any]) -> float:
    """Usage minus the reclaimable page cache, as docker stats shows it (cgroup v1 and v2 key names)."""
    details = memory_stats.get("stats", {})
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    return float(max(memory_stats.get("usage", 0) - inactive, 0))


def engine_socket() -> Path | None:
    """The engine's Unix socket, or None when the engine is reached another way."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return Path(host.removeprefix("unix://"))
    if host:
        return None
    return DEFAULT_SOCKET if DEFAULT_SOCKET.exists() else None


class _Sampler:
    """Background thread collecting samples {t_s, t_unix, cpu_percent, rss_bytes} of one container."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.error: str | None = None
        self._samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=f"stats-{container[:12]}", daemon=True)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> list[dict[str, float]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return list(self._samples)

    def _add(self, cpu: float, memory: float) -> None:
        self._samples.append(
            {
                "t_s": time.perf_counter() - self._t0,
                "t_unix": time.time(),
                "cpu_percent": cpu,
                "rss_bytes": memory,
            }
        )

    def _guarded(self) -> None:
        try:
            self._run()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:  # the report shows fewer samples
            self.error = f"{type(error).__name__}: {error}"

    def _run(self) -> None:
        raise NotImplementedError


class EngineStatsSampler(_Sampler):
    """The engine's stats stream: one reading per second on one connection, no process per sample."""

    def __init__(self, container: str, socket: Path) -> None:
        super().__init__(container)
        self.socket = socket

    def _run(self) -> None:
        transport = httpx.HTTPTransport(uds=str(self.socket))
        with (
            httpx.Client(transport=transport, base_url="http://docker", timeout=10.0) as client,
            client.stream(
                "GET", f"/containers/{self.container}/stats", params={"stream": "true"}
            ) as response,
        ):
            response.raise_for_status()
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if not line.strip():
                    continue
                stats = json.loads(line)
                cpu = cpu_percent(stats)
                if cpu is not None:
                    self._add(cpu, memory_in_use(stats.get("memory_stats", {})))


class DockerCliStatsSampler(_Sampler):
    """`docker stats --no-stream`, polled: for engines not reached through a Unix socket."""

    def _run(self) -> None:
        while not self._stop.is_set():
            done = docker("stats", "--no-stream", "--format", "{{json .}}", self.container, check=False)
            if done.returncode == 0 and done.stdout.strip():
                stats = json.loads(done.stdout.strip().splitlines()[0])
                self._add(float(stats["CPUPerc"].rstrip("%")), parse_size(stats["MemUsage"].split("/")[0]))
            self._stop.wait(0.5)


def stats_sampler(container: str) -> _Sampler:
    socket = engine_socket()
    return EngineStatsSampler(container, socket) if socket is not None else DockerCliStatsSampler(container)


def probe_tools(image: str) -> tuple[bool, list[str]]:
    """Whether the image has /bin/sh, and which of TOOLS_TO_PROBE its PATH holds (needs that shell)."""
    script = (
        f'for t in {" ".join(TOOLS_TO_PROBE)}; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; exit 0'
    )
    done = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", script, check=False
    )  # fmt: skip
    return (done.returncode == 0, done.stdout.split() if done.returncode == 0 else [])


def image_footprint(image: str) -> dict[str, Any]:
    """Size (as `docker images` shows it), layer count and tools present of one image."""
    inspected = inspect("image", image)
    has_shell, tools = probe_tools(inspected["Id"])
    return {
        "image_id": inspected["Id"],
        "tags": inspected.get("RepoTags") or [],
        "size_bytes": inspected.get("Size"),
        "layers": len(inspected.get("RootFS", {}).get("Layers", [])),
        "tools": tools,
        "has_shell": has_shell,
    }


def fat_counterpart_footprint(served_image: str) -> dict[str, Any]:
    """The `:dev` (fat) image beside a served `:slim` one, for the fat vs slim comparison."""
    if not served_image.endswith(SLIM_TAG_SUFFIX):
        return not_measured(f"served image {served_image} is not a {SLIM_TAG_SUFFIX} tag: no fat counterpart")
    fat = served_image.removesuffix(SLIM_TAG_SUFFIX) + FAT_TAG_SUFFIX
    if not image_exists(fat):
        return not_measured(
            f"no {fat} image (docker/build.sh makes the flavours [variant.image] lists; ALL_FLAVOURS=1 all)"
        )
    return image_footprint(fat)


def container_settings(container: dict[str, Any]) -> dict[str, Any]:
    """The limits and serving settings a container ran with (from `docker inspect`)."""
    host = container["HostConfig"]
    environment = dict(item.split("=", 1) for item in container["Config"].get("Env") or [] if "=" in item)
    return {
        "image": container["Config"]["Image"],
        "cpus": (host.get("NanoCpus") or 0) / 1e9 or None,
        "cpuset": host.get("CpusetCpus") or None,
        "memory_limit_bytes": host.get("Memory") or None,
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name"),
        "environment": {
            key: value
            for key, value in environment.items()
            if key in {"WORKERS", "THREADS", "INTER_OP_THREADS", "WARMUP", "PORT", "HOST"}
        },
    }
