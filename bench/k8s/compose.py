"""compose.yaml as the manifests read it: each value with its ``${NAME:-default}`` resolved."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bench.k8s.constants import COMPOSE_FILE, DISTROLESS_NONROOT_UID
from bench.registry import REPO_ROOT


class ManifestError(ValueError):
    pass


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def compose_default(value: Any) -> str:
    """A compose value with every ``${NAME:-default}`` replaced by its default (``${NAME}`` by nothing)."""
    return _INTERPOLATION.sub(lambda match: match[2] or "", str(value))


def quantity_cpu(value: Any) -> str:
    cores = float(compose_default(value))
    return str(int(cores)) if cores.is_integer() else f"{round(cores * 1000)}m"


def quantity_memory(value: Any) -> str:
    """Compose's byte units (1024-based: ``2g``, ``512m``) as Kubernetes quantities (``2Gi``, ``512Mi``)."""
    text = compose_default(value).strip().lower()
    match = re.fullmatch(r"(\d+)([kmg]?)b?", text)
    if match is None:
        raise ManifestError(f"memory {value!r}: not a compose byte value")
    suffix = {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}[match[2]]
    return f"{match[1]}{suffix}"


def seconds(value: Any) -> int:
    text = compose_default(value).strip()
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or match is None:
        raise ManifestError(f"duration {value!r}: expected e.g. 15s or 2m")
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def image_uid(dockerfile: Path) -> int:
    """The numeric user an image runs as (Kubernetes can only check runAsNonRoot against a number)."""
    text = dockerfile.read_text()
    if (match := re.search(r"useradd\b[^\n]*--uid (\d+)", text)) is not None:
        return int(match[1])
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    if users and users[-1].isdigit():
        return int(users[-1])
    if users and users[-1] == "nonroot" and "distroless" in text:
        return DISTROLESS_NONROOT_UID
    raise ManifestError(
        f"{dockerfile}: no numeric user found (useradd --uid, USER <uid>, distroless nonroot)"
    )


class Compose:
    """compose.yaml as the manifests need it: each service with its defaults resolved."""

    def __init__(self, path: Path = COMPOSE_FILE) -> None:
        self.path = path
        self.services: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["services"]

    def service(self, name: str) -> dict[str, Any]:
        if name not in self.services:
            raise ManifestError(f"{self.path.name} has no service {name!r}")
        return self.services[name]

    def image(self, name: str) -> str | None:
        image = self.service(name).get("image")
        return compose_default(image) if image else None

    def environment(self, name: str) -> dict[str, str]:
        environment = self.service(name).get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        return {key: compose_default(value) for key, value in environment.items()}

    def container_port(self, name: str) -> int:
        ports = self.service(name).get("ports") or []
        if len(ports) != 1:
            raise ManifestError(f"compose service {name}: expected one published port, found {ports}")
        return int(compose_default(ports[0]).rsplit(":", 1)[-1])

    def limits(self, name: str) -> dict[str, str]:
        limits = ((self.service(name).get("deploy") or {}).get("resources") or {}).get("limits") or {}
        found = {}
        if "cpus" in limits:
            found["cpu"] = quantity_cpu(limits["cpus"])
        if "memory" in limits:
            found["memory"] = quantity_memory(limits["memory"])
        return found

    def dockerfile(self, name: str) -> Path:
        """The Dockerfile of the service's image: its own build section, or that of the one building it."""
        image = self.image(name)
        for candidate in (name, *self.services):
            service = self.services[candidate]
            build = service.get("build")
            if build and (candidate == name or self.image(candidate) == image):
                context = REPO_ROOT / compose_default(build.get("context", "."))
                return context / compose_default(build.get("dockerfile", "Dockerfile"))
        raise ManifestError(f"compose service {name}: no service builds its image {image}")

    def bind_mounts(self, name: str) -> list[tuple[Path, str]]:
        """Repository folders bind-mounted into the service: (folder in the repository, mount path)."""
        found = []
        for volume in self.service(name).get("volumes") or []:
            source, target, *_ = compose_default(volume).split(":")
            if source.startswith("."):
                found.append((Path(source), target))
        return found
