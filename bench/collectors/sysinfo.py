"""The machine and software a run measured: CPU, cores, cgroup limits, library versions, git commit."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = (
    "torch",
    "onnxruntime",
    "numpy",
    "pillow",
    "fastapi",
    "uvicorn",
    "pydantic",
    "locust",
    "psutil",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cgroup_limits() -> dict[str, str | None]:
    """cgroup v2 CPU quota and memory limit of this process ("max" means none)."""

    def read(name: str) -> str | None:
        try:
            return Path("/sys/fs/cgroup", name).read_text().strip()
        except OSError:
            return None

    return {
        "cpu.max": read("cpu.max"),
        "memory.max": read("memory.max"),
        "cpuset.cpus.effective": read("cpuset.cpus.effective"),
    }


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def collect_sysinfo() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "memory_total_bytes": psutil.virtual_memory().total,
        "load_average_1m_at_start": os.getloadavg()[0],
        "cgroup": cgroup_limits(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "git": git_commit(),
    }
