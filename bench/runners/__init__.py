"""Runners start and stop a variant: local processes, compose containers, or nothing (a given URL)."""

from __future__ import annotations

import shutil
import subprocess
from typing import NamedTuple

from bench.registry import Variant
from bench.runners.base import Runner, Service, StartupError
from bench.runners.compose import BUILD_HINT, ComposeRunner
from bench.runners.external import ExternalRunner
from bench.runners.local import LocalRunner

__all__ = [
    "ComposeRunner",
    "ExternalRunner",
    "LocalRunner",
    "Runner",
    "RunnerChoice",
    "Service",
    "SkippedVariant",
    "StartupError",
    "choose_runner",
    "runnable_variants",
]


def docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RunnerChoice(NamedTuple):
    name: str
    reason: str


def resolve_runner_name(requested: str, variants: list[Variant] | None = None) -> RunnerChoice:
    """`auto` means compose where a Docker engine answers and every variant's image is built, else local.

    Auto never builds images (minutes, and a registry or the offline wheelhouse): it says what is missing
    and measures locally; `--runner compose` with missing images fails with the build command instead."""
    if requested not in {"auto", "local", "compose"}:
        raise ValueError(f"unknown runner {requested!r}; choose auto, local or compose")
    if requested != "auto":
        return RunnerChoice(requested, "requested")
    if not docker_engine_answers():
        return RunnerChoice("local", "auto: no Docker engine answers")
    try:
        problems = ComposeRunner().unavailable(variants or [])
    except (StartupError, OSError, subprocess.SubprocessError) as error:
        return RunnerChoice("local", f"auto: Docker engine answers but compose is unusable ({error})")
    if problems:
        return RunnerChoice("local", f"auto: Docker engine answers but {'; '.join(problems)} ({BUILD_HINT})")
    return RunnerChoice("compose", "auto: Docker engine answers and every image is built")


def choose_runner(variant: Variant, main_runner: Runner, external_runner: ExternalRunner) -> Runner:
    """A variant given by URL is never started by the bench; every other one uses the run's runner."""
    return external_runner if variant.is_external_url else main_runner


class SkippedVariant(NamedTuple):
    name: str
    reason: str


SKIPPED_VARIANTS_FILE = "skipped_variants.json"  # raw/<this>: [{"name": ..., "reason": ...}]


def runnable_variants(
    variants: list[Variant], main_runner: Runner, external_runner: ExternalRunner
) -> tuple[list[Variant], list[SkippedVariant]]:
    """The variants the run can measure, and those skipped with the reason (a `requires` command missing,
    a failed `[variant.local] build`); a build runs here, once, before anything is measured."""
    runnable: list[Variant] = []
    skipped: list[SkippedVariant] = []
    for variant in variants:
        reason = choose_runner(variant, main_runner, external_runner).skip_reason(variant)
        if reason is None:
            runnable.append(variant)
        else:
            skipped.append(SkippedVariant(variant.name, reason))
    return runnable, skipped
