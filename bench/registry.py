"""The variants registry: what a variant is and where the bench finds the declarations.

Variants are data, not code. The in-repo file (``bench/variants.toml``) declares the Python variants, every
``external/*/variants.toml`` adds the services kept in ``external/`` (a Rust one, say), and any other file
(``--variants-file`` or ``BENCH_VARIANTS_FILES``) adds more, for example a service written in another language
that is already running (``url``) or that compose starts (``compose_service``).

Everything else that needs the list of variants (the Makefile, docker/build.sh, docker/wheelhouse.sh, the
image builds, the tests) reads it from here, through ``python -m bench.registry`` (see ``main``).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import sys
import sysconfig
import tomllib
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

BUILTIN_VARIANTS_FILE = Path(__file__).with_name("variants.toml")
REPO_ROOT = BUILTIN_VARIANTS_FILE.parents[1]
EXTERNAL_VARIANTS_GLOB = "external/*/variants.toml"
VARIANTS_FILES_ENV = "BENCH_VARIANTS_FILES"
# Image tags: <prefix>/<name>-serving:{slim,dev}, what docker/build.sh gives and compose.yaml uses.
IMAGE_SUFFIX = "-serving"


class RegistryError(ValueError):
    """A variants file that cannot be used, with a message that says which file and why."""


class PayloadFormat(StrEnum):
    JSON = "json"
    RAW = "raw"
    MULTIPART = "multipart"
    OIP_V2 = "oip-v2"  # KServe Open Inference Protocol v2: a BYTES tensor, the image base64 in JSON
    OIP_V2_BINARY = "oip-v2-binary"  # the same with the binary tensor data extension (raw bytes after JSON)

    @property
    def is_oip(self) -> bool:
        return self in {PayloadFormat.OIP_V2, PayloadFormat.OIP_V2_BINARY}


def placeholders(*, root: Path, port: int | None = None) -> dict[str, str]:
    """What ``{python}``, ``{port}``, ``{root}`` and ``{site_packages}`` stand for in commands and env."""
    values = {
        "python": sys.executable,
        "root": str(root),
        "site_packages": sysconfig.get_paths()["purelib"],  # the bench interpreter's (onnxruntime's dylib)
    }
    if port is not None:
        values["port"] = str(port)
    return values


class LocalLaunch(BaseModel):
    """How the local runner starts the variant as a process on loopback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cold_env: dict[str, str] = Field(
        default_factory=dict, description="added for cold-start runs (warmup off)"
    )
    cwd: Path | None = None
    build: list[str] | None = Field(
        default=None,
        min_length=1,
        description="run once (cwd = root) before the variant is first started; a failure skips the variant",
    )

    def render(self, *, port: int, root: Path, cold: bool = False) -> tuple[list[str], dict[str, str]]:
        """The command and the environment additions with placeholders filled in."""
        values = placeholders(root=root, port=port)
        command = [part.format(**values) for part in self.command]
        env = {key: value.format(**values) for key, value in self.env.items()}
        if cold:
            env.update({key: value.format(**values) for key, value in self.cold_env.items()})
        return command, env

    def render_build(self, *, root: Path) -> list[str] | None:
        """The build command with placeholders filled in (no ``{port}``: nothing listens yet)."""
        if self.build is None:
            return None
        values = placeholders(root=root)
        return [part.format(**values) for part in self.build]

    @property
    def python_package(self) -> str | None:
        """``foo_serving`` when the command is ``{python} -m foo_serving``, else None (another language)."""
        if len(self.command) == 3 and self.command[0] == "{python}" and self.command[1] == "-m":
            return self.command[2]
        return None


class InProcess(BaseModel):
    """The variant's own Python code, for the in-process ceiling, sweeps and profiles (no HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predictor: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:PredictorClass")
    settings: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:SettingsClass")


class ImageBuild(BaseModel):
    """What the shared Python image build (docker/python-variant.Dockerfile) puts in the variant's image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[Path] = Field(
        default_factory=list,
        description="files and folders copied into /app beside the variant's package (code, models)",
    )
    flavours: list[Literal["slim", "dev"]] = Field(
        default_factory=lambda: ["slim", "dev"],
        description="the images docker/build.sh makes: slim (the runtime stage compose serves) and dev (the "
        "fat stage with compilers and pip, the footprint's comparison; ALL_FLAVOURS=1 builds it anyway)",
    )

    @field_validator("flavours")
    @classmethod
    def _slim_is_always_built(cls, flavours: list[str]) -> list[str]:
        if "slim" not in flavours:
            raise ValueError("flavours must include slim: it is the image compose serves")
        return list(dict.fromkeys(flavours))


class TestSetup(BaseModel):
    """How the live test suite starts the variant (tests/conftest.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: bool = Field(
        default=True,
        description="the live suite starts it; a derived strategy without a [variant.tests] of its own "
        "does not (its code is its base's; tests/e2e/test_strategy_overlay.py starts one)",
    )
    workers: int = Field(default=1, ge=1, description="the suite expects this many worker processes")
    env: dict[str, str] = Field(default_factory=dict, description="added to [variant.local] env")
    artifact_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="the variable naming the served artifact (the first of `artifacts`)",
    )


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
    oip_model: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="OIP formats: the model name"
    )
    oip_input: str | None = Field(
        default=None, min_length=1, description="OIP formats: the BYTES input the encoded image is sent in"
    )
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
    image: ImageBuild | None = None
    tests: TestSetup = Field(default_factory=TestSetup)
    requires: list[str] = Field(
        default_factory=list, description="commands that must be on PATH to build or start it locally"
    )
    contract_skips: dict[str, str] = Field(
        default_factory=dict,
        description="test-name pattern (fnmatch) -> why that part of the test suite does not apply to it",
    )
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="service settings (environment variables) that make this variant what it is, e.g. "
        "JPEG_DRAFT=true: added to [variant.local] env, and `make serve-<name>` starts the package with them",
    )
    approximates: str | None = Field(
        default=None,
        description="the variant this one approximates (a lossy shortcut of it): every run gates it against "
        "that exact one on the same images, in process (bench/inprocess/approximation.py)",
    )
    hosts: str | None = Field(
        default=None,
        description="the variant whose predictor, artifact and session settings this one serves inside "
        "another server (a serving framework): the report states its overhead against that one",
    )
    extends: str | None = Field(
        default=None,
        description="the variant this strategy derives from (see ``derive_entry``); kept for the report",
    )
    profiles: list[str] | None = Field(
        default=None,
        description="the bench profiles (quick, full, ...) that run it when no --variants is given; "
        "default: every profile",
    )
    root: Path = Field(default=Path(), description="folder the relative paths above resolve against")
    source: Path | None = Field(default=None, description="the variants file that declared it")

    @model_validator(mode="before")
    @classmethod
    def _settings_join_the_local_env(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("settings") and isinstance(data.get("local"), dict):
            local = dict(data["local"])
            local["env"] = {**local.get("env", {}), **data["settings"]}
            data = {**data, "local": local}
        return data

    @model_validator(mode="before")
    @classmethod
    def _oip_paths_default_to_the_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and str(data.get("payload_format", "")).startswith("oip-"):
            model = f"/v2/models/{data.get('oip_model')}"
            defaults = {"predict_path": f"{model}/infer", "ready_path": f"{model}/ready", "info_path": model}
            data = {**defaults, **data}
        return data

    @field_validator("settings")
    @classmethod
    def _settings_are_plain_words(cls, settings: dict[str, str]) -> dict[str, str]:
        for key, value in settings.items():
            if not key.isidentifier() or not key.isupper() or any(char.isspace() for char in value):
                raise ValueError(
                    f"settings: {key}={value!r} must be an UPPER_CASE name and a value without spaces"
                )
        return settings

    @model_validator(mode="after")
    def _can_be_reached(self) -> Variant:
        if self.url is None and self.local is None and self.compose_service is None:
            raise ValueError("needs at least one of `url`, `[variant.local]` or `compose_service`")
        if self.url is None and self.port is None:
            raise ValueError("needs `port` unless it gives `url`")
        if self.approximates is not None and (self.approximates == self.name or self.in_process is None):
            raise ValueError("`approximates` names another variant and needs `[variant.in_process]`")
        if self.hosts == self.name:
            raise ValueError("`hosts` names another variant")
        if self.payload_format.is_oip and (self.oip_model is None or self.oip_input is None):
            raise ValueError(f"payload_format {self.payload_format} needs `oip_model` and `oip_input`")
        if not self.payload_format.is_oip and (self.oip_model or self.oip_input):
            raise ValueError("`oip_model` and `oip_input` apply only to the oip-v2 payload formats")
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

    @property
    def python_package(self) -> str | None:
        return None if self.local is None else self.local.python_package

    def missing_commands(self) -> list[str]:
        """The `requires` commands not found on PATH."""
        return [command for command in self.requires if shutil.which(command) is None]

    def image_tag(self, flavour: str, prefix: str = "serving-lab") -> str:
        return f"{prefix}/{self.name}{IMAGE_SUFFIX}:{flavour}"

    def skip_reason(self, test_name: str) -> str | None:
        """Why test ``test_name`` does not apply to this variant (its `contract_skips`), or None."""
        base = test_name.split("[", 1)[0]
        for pattern, reason in self.contract_skips.items():
            if fnmatch.fnmatchcase(base, pattern) or fnmatch.fnmatchcase(test_name, pattern):
                return f"{self.name}: {reason}"
        return None


# A derived entry (`extends = "base"`) takes every key of its base but these: what names, places or tests a
# declaration of its own, and what only one variant of a run may be.
NOT_INHERITED = frozenset(
    {"name", "description", "baseline", "port", "compose_service", "compose_port_env", "image", "tests",
     "contract_skips", "profiles", "approximates", "hosts", "extends", "unset", "source"}
)  # fmt: skip
PATH_KEYS = ("requirements", "artifacts")


def _anchored(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's path keys made absolute against its own root, so a derived entry in another file (another
    root) inherits paths that still point at the base's files."""
    root = Path(entry["root"])
    anchored = dict(entry)
    if isinstance(entry.get("requirements"), str):
        anchored["requirements"] = str((root / entry["requirements"]).resolve())
    if isinstance(entry.get("artifacts"), list):
        anchored["artifacts"] = [str((root / str(path)).resolve()) for path in entry["artifacts"]]
    return anchored


def derive_entry(entry: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """A strategy as a few TOML lines: ``extends = "onnx"`` plus what differs.

    The base's keys are inherited (but ``NOT_INHERITED``); ``settings`` and ``[local] env`` / ``cold_env`` are
    merged key by key, the derived entry winning; any other key the derived entry gives replaces the base's
    (``artifacts``, say). ``unset = ["NAME", ...]`` removes inherited settings or env variables (an allocator
    setting left at glibc's default, say)."""
    same_root = base.get("root") == entry.get("root")
    source = base if same_root else _anchored(base)
    inherited = {key: value for key, value in source.items() if key not in NOT_INHERITED}
    derived = {**inherited, **{key: value for key, value in entry.items() if key != "unset"}}
    derived["settings"] = {**base.get("settings", {}), **entry.get("settings", {})}
    derived.setdefault("tests", {"run": False})
    if isinstance(base.get("local"), dict):
        local = {**base["local"], **entry.get("local", {})}
        for key in ("env", "cold_env"):
            local[key] = {**base["local"].get(key, {}), **entry.get("local", {}).get(key, {})}
        derived["local"] = local
    for name in entry.get("unset", []):
        derived["settings"].pop(name, None)
        if "local" in derived:
            derived["local"]["env"].pop(name, None)
    return derived


def _entries_of(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The raw ``[[variant]]`` tables of one file, each with its ``root`` and ``source``."""
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
    entries = document.get("variant", [])
    if not entries:
        raise RegistryError(f"{path}: declares no [[variant]]")
    return path, [
        {**entry, "root": str(root), "source": str(path)} if isinstance(entry, dict) else entry
        for entry in entries
    ]


def _validated(
    entry: Any, index: int, path: Path, known: dict[str, dict[str, Any]]
) -> tuple[Variant, dict[str, Any]]:
    """One raw entry as a Variant (and the entry it resolved to), its ``extends`` resolved against the
    entries declared before it."""
    label = entry.get("name", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
    try:
        if isinstance(entry, dict) and entry.get("extends") is not None:
            base = known.get(entry["extends"])
            if base is None:
                raise RegistryError(
                    f"{path}: variant {label}: extends {entry['extends']!r}, which is not declared before it"
                )
            entry = derive_entry(entry, base)
        elif isinstance(entry, dict) and "unset" in entry:
            raise RegistryError(f"{path}: variant {label}: `unset` only applies with `extends`")
        return Variant.model_validate(entry), entry
    except ValidationError as error:
        raise RegistryError(f"{path}: variant {label}: {error}") from error


def load_variants_file(path: str | Path, known: dict[str, dict[str, Any]] | None = None) -> list[Variant]:
    """Every variant one TOML file declares, with paths anchored at the file's `root`. ``known``: the raw
    entries declared before (in earlier files) that an ``extends`` may name; this file's are added to it."""
    path, entries = _entries_of(Path(path).resolve())
    known = {} if known is None else known
    variants = []
    for index, entry in enumerate(entries):
        variant, resolved = _validated(entry, index, path, known)
        known[variant.name] = resolved
        variants.append(variant)
    return variants


def extra_files_from_env(environ: dict[str, str] | None = None) -> list[Path]:
    raw = (environ if environ is not None else os.environ).get(VARIANTS_FILES_ENV, "")
    return [Path(part) for part in raw.split(os.pathsep) if part.strip()]


def external_variants_files(repo_root: Path = REPO_ROOT) -> list[Path]:
    """``external/*/variants.toml``: the services kept in external/ declare themselves."""
    return sorted(repo_root.glob(EXTERNAL_VARIANTS_GLOB))


def load_registry(
    extra_files: list[Path] | None = None,
    *,
    include_builtin: bool = True,
    environ: dict[str, str] | None = None,
    repo_root: Path = REPO_ROOT,
) -> list[Variant]:
    """The built-in variants and those of ``external/*/variants.toml`` (unless ``include_builtin`` is off),
    then those of the environment's files, then those given explicitly.

    A name declared twice is refused, except that a file given explicitly (environment or argument) may
    redeclare a variant an ``external/*/variants.toml`` found by default declares: the explicit one wins."""
    defaults = [BUILTIN_VARIANTS_FILE, *external_variants_files(repo_root)] if include_builtin else []
    explicit = [*extra_files_from_env(environ), *(extra_files or [])]
    variants: dict[str, Variant] = {}
    known: dict[str, dict[str, Any]] = {}
    for file in [*defaults, *explicit]:
        for variant in load_variants_file(file, known):
            earlier = variants.get(variant.name)
            if earlier is not None:
                replaceable = earlier.source != BUILTIN_VARIANTS_FILE.resolve() and earlier.source in {
                    path.resolve() for path in defaults
                }
                if not (replaceable and file in explicit):
                    raise RegistryError(
                        f"variant {variant.name!r} is declared twice: "
                        f"in {earlier.source} and in {variant.source}"
                    )
                del variants[variant.name]  # the explicit declaration replaces the discovered one
            variants[variant.name] = variant
    _check_approximations(variants)
    _check_hosted(variants)
    return list(variants.values())


def in_profile(variants: list[Variant], profile: str) -> list[Variant]:
    """The variants a profile runs when none are named: those whose ``profiles`` list it (or list none)."""
    return [variant for variant in variants if variant.profiles is None or profile in variant.profiles]


def _check_approximations(variants: dict[str, Variant]) -> None:
    """Each `approximates` names a registered variant the gates can run in process."""
    for variant in variants.values():
        if variant.approximates is None:
            continue
        exact = variants.get(variant.approximates)
        if exact is None or exact.in_process is None:
            raise RegistryError(
                f"{variant.source}: variant {variant.name}: approximates {variant.approximates!r}, which is "
                + ("not registered" if exact is None else "has no [variant.in_process]")
            )


def _check_hosted(variants: dict[str, Variant]) -> None:
    """Each `hosts` names a registered variant."""
    for variant in variants.values():
        if variant.hosts is not None and variant.hosts not in variants:
            raise RegistryError(
                f"{variant.source}: variant {variant.name}: hosts {variant.hosts!r}, which is not registered"
            )


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


# --- the query CLI: what the Makefile, the shell scripts and the image build read from the registry ---


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it (what the shell scripts pass on)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _field(variant: Variant, field: str) -> list[str]:
    if field == "package":
        return [variant.python_package] if variant.python_package else []
    if field == "port":
        return [] if variant.port is None else [str(variant.port)]
    if field == "requirements":
        return [] if variant.requirements_path is None else [_shown(variant.requirements_path)]
    if field == "artifacts":
        return [_shown(path) for path in variant.artifact_paths]
    if field == "image-files":
        return (
            [] if variant.image is None else [_shown(variant.resolve(path)) for path in variant.image.files]
        )
    if field == "image-flavours":
        return [] if variant.image is None else list(variant.image.flavours)
    if field == "compose-service":
        return [variant.compose_service] if variant.compose_service else []
    if field == "settings":
        return [f"{key}={value}" for key, value in variant.settings.items()]
    raise RegistryError(f"unknown field {field!r}; one of {', '.join(QUERY_FIELDS)}")


QUERY_FIELDS = (
    "package", "port", "requirements", "artifacts", "image-files", "image-flavours", "compose-service",
    "settings",
)  # fmt: skip


def stage_image(variant: Variant, destination: Path) -> list[Path]:
    """Copy the variant's package and its `[variant.image] files` into ``destination`` (the image's /app),
    keeping their paths relative to the registry root; returns what was copied."""
    if variant.image is None or variant.python_package is None:
        raise RegistryError(f"{variant.name}: no [variant.image] section or not a `{{python}} -m` variant")
    copied = []
    for relative in [Path(variant.python_package), *variant.image.files]:
        source = variant.resolve(relative)
        target = destination / source.relative_to(variant.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, target)
        else:
            raise RegistryError(f"{variant.name}: {source} (listed in [variant.image] files) does not exist")
        copied.append(target)
    return copied


VARIANTS_TOKEN = "{variants}"


def in_repo_python_packages(variants: Sequence[Variant]) -> list[str]:
    """The packages of the registered Python variants that live in this repository (``<name>_serving/``),
    once each (a variant may be another's package with other settings)."""
    packages = dict.fromkeys(variant.python_package for variant in variants)
    return [package for package in packages if package and (REPO_ROOT / package).is_dir()]


PYPROJECT = REPO_ROOT / "pyproject.toml"


def import_contracts(variants: Sequence[Variant], pyproject: Path = PYPROJECT) -> str:
    """pyproject.toml's import-linter contracts, ``{variants}`` expanded, as the INI lint-imports reads.

    In ``layers`` the token becomes one layer of independent packages (``a | b``); in any other list, the
    packages themselves. The variants are thus checked by the registry's list, never by a copy of it."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    packages = in_repo_python_packages(variants)

    def expanded(key: str, values: list[str]) -> list[str]:
        if key == "layers":
            return [" | ".join(packages) if value == VARIANTS_TOKEN else value for value in values]
        return [name for value in values for name in (packages if value == VARIANTS_TOKEN else [value])]

    def section(header: str, table: dict[str, object]) -> list[str]:
        lines = [f"[{header}]"]
        for key, value in table.items():
            if isinstance(value, list):
                lines += [f"{key} =", *(f"    {item}" for item in expanded(key, value))]
            else:
                lines.append(f"{key} = {value}")
        return [*lines, ""]

    contracts = config.pop("contracts", [])
    lines = section("importlinter", config)
    for number, contract in enumerate(contracts, start=1):
        lines += section(f"importlinter:contract:{number}", contract)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.registry names|get|requirements|stage-image|import-contracts|json``: the registry for
    scripts."""
    parser = argparse.ArgumentParser(prog="python -m bench.registry", description=main.__doc__)
    parser.add_argument("--variants-file", action="append", type=Path, default=[], help="an extra file")
    parser.add_argument("--no-builtin", action="store_true", help="leave out the default files")
    commands = parser.add_subparsers(dest="command", required=True)
    names = commands.add_parser("names", help="variant names, one a line")
    names.add_argument("--image", action="store_true", help="only those the Python image build makes")
    names.add_argument("--local", action="store_true", help="only those with a [variant.local] launch")
    get = commands.add_parser("get", help="one field of one variant, one value a line")
    get.add_argument("name")
    get.add_argument("field", choices=QUERY_FIELDS)
    requirements = commands.add_parser("requirements", help="every requirements file, one a line")
    requirements.add_argument("--image", action="store_true", help="only those of variants with an image")
    stage = commands.add_parser("stage-image", help="copy a variant's package and image files into DEST")
    stage.add_argument("name")
    stage.add_argument("destination", type=Path)
    commands.add_parser("import-contracts", help="the import-linter contracts, variants filled in (INI)")
    commands.add_parser("json", help="every variant as JSON")
    args = parser.parse_args(argv)
    try:
        variants = load_registry(args.variants_file, include_builtin=not args.no_builtin)
        lines: list[str] = []
        if args.command == "names":
            lines = [
                variant.name
                for variant in variants
                if (not args.image or variant.image is not None)
                and (not args.local or variant.local is not None)
            ]
        elif args.command == "get":
            lines = _field(select_variants(variants, [args.name])[0], args.field)
        elif args.command == "requirements":
            chosen = [variant for variant in variants if not args.image or variant.image is not None]
            lines = list(
                dict.fromkeys(line for variant in chosen for line in _field(variant, "requirements"))
            )
        elif args.command == "stage-image":
            stage_image(select_variants(variants, [args.name])[0], args.destination)
        elif args.command == "import-contracts":
            lines = [import_contracts(variants)]
        else:
            lines = [json.dumps([variant.model_dump(mode="json") for variant in variants], indent=2)]
    except RegistryError as error:
        print(f"bench.registry: {error}", file=sys.stderr)
        return 2
    if lines:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
