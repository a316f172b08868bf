"""Runners start and stop a variant: local processes, compose containers, or nothing (a given URL)."""

from __future__ import annotations

import shutil
import subprocess

from bench.registry import Variant
from bench.runners.base import Runner, Service, StartupError
from bench.runners.compose import ComposeRunner
from bench.runners.external import ExternalRunner
from bench.runners.local import LocalRunner

__all__ = [
    "ComposeRunner",
    "ExternalRunner",
    "LocalRunner",
    "Runner",
    "Service",
    "StartupError",
    "choose_runner",
]


def docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve_runner_name(requested: str) -> str:
    """`auto` means compose where a Docker engine answers, local otherwise."""
    if requested not in {"auto", "local", "compose"}:
        raise ValueError(f"unknown runner {requested!r}; choose auto, local or compose")
    if requested != "auto":
        return requested
    return "compose" if docker_engine_answers() else "local"


def choose_runner(variant: Variant, main_runner: Runner, external_runner: ExternalRunner) -> Runner:
    """A variant given by URL is never started by the bench; every other one uses the run's runner."""
    return external_runner if variant.is_external_url else main_runner
