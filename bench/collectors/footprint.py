"""How much disk a variant needs: its model artifacts and (local runner) its dependency closure.

The closure is the set of distributions reachable from the variant's requirements file through their
declared dependencies, resolved against the distributions installed in the bench's own environment; its
size is the sum of the files those distributions installed. It approximates what a slim image's virtual
environment would hold.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections import deque
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

CLOSURE_LABEL = (
    "installed size of the dependency closure of {file} in the bench's virtual environment (not an image)"
)


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements of a pip requirements file, following ``-r`` includes; options and comments
    skipped."""
    requirements: list[Requirement] = []
    for raw_line in path.read_text().splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            requirements += read_requirements(path.parent / line.split(maxsplit=1)[1])
            continue
        if line.startswith("-"):
            continue  # --index-url and friends do not name packages
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as error:
            raise ValueError(f"{path}: cannot parse requirement {line!r}: {error}") from error
    return requirements


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def dependency_closure(requirements: list[Requirement]) -> tuple[dict[str, metadata.Distribution], list[str]]:
    """Installed distributions reachable from ``requirements`` and the names that are not installed."""
    found: dict[str, metadata.Distribution] = {}
    missing: list[str] = []
    queue: deque[tuple[Requirement, set[str]]] = deque((req, set(req.extras)) for req in requirements)
    visited_extras: dict[str, set[str]] = {}
    while queue:
        requirement, extras = queue.popleft()
        name = canonicalize_name(requirement.name)
        if name in visited_extras and extras <= visited_extras[name]:
            continue
        visited_extras.setdefault(name, set()).update(extras)
        try:
            distribution = found.get(name) or metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        found[name] = distribution
        for line in distribution.requires or []:
            dependency = Requirement(line)
            if _applies(dependency, extras):
                queue.append((dependency, set(dependency.extras)))
    return found, sorted(set(missing))


def installed_bytes(distribution: metadata.Distribution) -> int:
    total = 0
    for file in distribution.files or []:
        path = Path(str(distribution.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def dependency_closure_size(requirements_file: Path) -> dict[str, Any]:
    distributions, missing = dependency_closure(read_requirements(requirements_file))
    sizes = {name: installed_bytes(dist) for name, dist in distributions.items()}
    largest = sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:8]
    return {
        "label": CLOSURE_LABEL.format(file=requirements_file.name),
        "requirements_file": str(requirements_file),
        "total_bytes": sum(sizes.values()),
        "distributions": len(sizes),
        "largest": [{"name": name, "bytes": size} for name, size in largest],
        "names": sorted(sizes),
        "not_installed": missing,
    }


def artifact_sizes(paths: list[Path]) -> dict[str, Any]:
    files = [{"path": str(path), "bytes": path.stat().st_size if path.is_file() else None} for path in paths]
    present = [file["bytes"] for file in files if file["bytes"] is not None]
    return {"files": files, "total_bytes": sum(present) if present else None}
