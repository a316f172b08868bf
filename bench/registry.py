"""The variants registry: what a variant is and where the bench finds the declarations.

Variants are data, not code. The in-repo file (``bench/variants.toml``) declares the Python variants; any
other file (``--variants-file`` or ``BENCH_VARIANTS_FILES``) adds more, for example a service written in
another language that is already running (``url``) or that compose starts (``compose_service``).
"""

from __future__ import annotations

import os
import sys
import tomllib
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

BUILTIN_VARIANTS_FILE = Path(__file__).with_name("variants.toml")
VARIANTS_FILES_ENV = "BENCH_VARIANTS_FILES"


class RegistryError(ValueError):
    """A variants file that cannot be used, with a message that says which file and why."""


class PayloadFormat(StrEnum):
    JSON = "json"
    RAW = "raw"
    MULTIPART = "multipart"


class LocalLaunch(BaseModel):
    """How the local runner starts the variant as a process on loopback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cold_env: dict[str, str] = Field(
        default_factory=dict, description="added for cold-start runs (warmup off)"
    )
    cwd: Path | None = None

    def render(self, *, port: int, root: Path, cold: bool = False) -> tuple[list[str], dict[str, str]]:
        """The command and the environment additions with placeholders filled in."""
        values = {"python": sys.executable, "port": str(port), "root": str(root)}
        command = [part.format(**values) for part in self.command]
        env = {key: value.format(**values) for key, value in self.env.items()}
        if cold:
            env.update({key: value.format(**values) for key, value in self.cold_env.items()})
        return command, env


class InProcess(BaseModel):
    """The variant's own Python code, for the in-process ceiling, sweeps and profiles (no HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predictor: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:PredictorClass")
    settings: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:SettingsClass")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    baseline: bool = False
    port: int | None = Field(default=None, gt=0, lt=65536)
    url: str | None = None
    ready_path: str = "/ready"
    predict_path: str = "/predict"
    info_path: str | None = "/info"
    payload_format: PayloadFormat = PayloadFormat.JSON
    compose_service: str | None = None
    compose_port_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="variable compose.yaml publishes the service's host port from (compose runner)",
    )
    requirements: Path | None = None
    artifacts: list[Path] = Field(default_factory=list)
    local: LocalLaunch | None = None
    in_process: InProcess | None = None
    root: Path = Field(default=Path(), description="folder the relative paths above resolve against")
    source: Path | None = Field(default=None, description="the variants file that declared it")

    @model_validator(mode="after")
    def _can_be_reached(self) -> Variant:
        if self.url is None and self.local is None and self.compose_service is None:
            raise ValueError("needs at least one of `url`, `[variant.local]` or `compose_service`")
        if self.url is None and self.port is None:
            raise ValueError("needs `port` unless it gives `url`")
        return self

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, url: str | None) -> str | None:
        return None if url is None else url.rstrip("/")

    @property
    def is_external_url(self) -> bool:
        return self.url is not None

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def requirements_path(self) -> Path | None:
        return None if self.requirements is None else self.resolve(self.requirements)

    @property
    def artifact_paths(self) -> list[Path]:
        return [self.resolve(path) for path in self.artifacts]

    @property
    def local_cwd(self) -> Path:
        if self.local is not None and self.local.cwd is not None:
            return self.resolve(self.local.cwd)
        return self.root


def load_variants_file(path: str | Path) -> list[Variant]:
    """Every variant one TOML file declares, with paths anchored at the file's `root`."""
    path = Path(path).resolve()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise RegistryError(f"{path}: no such variants file") from error
    except tomllib.TOMLDecodeError as error:
        raise RegistryError(f"{path}: not valid TOML: {error}") from error
    unknown_keys = set(document) - {"root", "variant"}
    if unknown_keys:
        raise RegistryError(
            f"{path}: unknown top-level keys {sorted(unknown_keys)} (expected `root`, `[[variant]]`)"
        )
    root = (path.parent / document.get("root", ".")).resolve()
    variants = []
    for index, entry in enumerate(document.get("variant", [])):
        try:
            variants.append(Variant.model_validate({**entry, "root": root, "source": path}))
        except ValidationError as error:
            label = entry.get("name", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
            raise RegistryError(f"{path}: variant {label}: {error}") from error
    if not variants:
        raise RegistryError(f"{path}: declares no [[variant]]")
    return variants


def extra_files_from_env(environ: dict[str, str] | None = None) -> list[Path]:
    raw = (environ if environ is not None else os.environ).get(VARIANTS_FILES_ENV, "")
    return [Path(part) for part in raw.split(os.pathsep) if part.strip()]


def load_registry(
    extra_files: list[Path] | None = None,
    *,
    include_builtin: bool = True,
    environ: dict[str, str] | None = None,
) -> list[Variant]:
    """The built-in variants, then those of the environment's files, then those given explicitly."""
    files = [BUILTIN_VARIANTS_FILE] if include_builtin else []
    files += extra_files_from_env(environ)
    files += list(extra_files or [])
    variants: list[Variant] = []
    seen: dict[str, Path | None] = {}
    for file in files:
        for variant in load_variants_file(file):
            if variant.name in seen:
                raise RegistryError(
                    f"variant {variant.name!r} is declared twice: "
                    f"in {seen[variant.name]} and in {variant.source}"
                )
            seen[variant.name] = variant.source
            variants.append(variant)
    return variants


def select_variants(variants: list[Variant], names: list[str] | None) -> list[Variant]:
    """The named variants in the order given (all of them when ``names`` is empty)."""
    if not names:
        return list(variants)
    by_name = {variant.name: variant for variant in variants}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise RegistryError(f"unknown variant(s) {missing}; registered: {sorted(by_name)}")
    return [by_name[name] for name in names]


def baseline_of(variants: list[Variant]) -> Variant:
    """The variant flagged ``baseline`` among those selected, else the first one."""
    if not variants:
        raise RegistryError("no variants selected")
    flagged = [variant for variant in variants if variant.baseline]
    if len(flagged) > 1:
        raise RegistryError(f"more than one baseline: {[variant.name for variant in flagged]}")
    return flagged[0] if flagged else variants[0]
