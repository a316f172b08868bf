"""Every generated file under deploy/k8s, and how the committed ones are compared and rewritten."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.k8s.compose import Compose
from bench.k8s.constants import EXTERNAL_HOOK_FILE, GENERATED_DIRS, HEADER, NAMESPACE, OUTPUT_DIR, PART_OF
from bench.k8s.locust import locust_manifests
from bench.k8s.serving import deployable, serving_manifests
from bench.profiles import PROFILES
from bench.registry import Variant, in_profile, load_registry


def _dump(documents: dict[str, Any]) -> dict[str, str]:
    return {
        name: HEADER + yaml.safe_dump(body, sort_keys=False, width=110) for name, body in documents.items()
    }


def _kustomization(resources: list[str]) -> str:
    body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    return HEADER + yaml.safe_dump(body, sort_keys=False)


def _component(directory: str, documents: dict[str, Any]) -> dict[str, str]:
    files = {f"base/{directory}/{name}": text for name, text in _dump(documents).items()}
    files[f"base/{directory}/kustomization.yaml"] = _kustomization(sorted(documents))
    return files


def generate(variants: Sequence[Variant] | None = None, compose: Compose | None = None) -> dict[str, str]:
    """Every generated file, by path relative to deploy/k8s."""
    compose = compose or Compose()
    variants = list(variants if variants is not None else load_registry([EXTERNAL_HOOK_FILE], environ={}))
    served = deployable(variants, compose)
    files: dict[str, str] = {}
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": PART_OF}},
    }
    files.update(_component("namespace", {"namespace.yaml": namespace}))
    files.update(_component("locust", locust_manifests(compose)))
    for variant in served:
        files.update(_component(variant.name, serving_manifests(variant, variants, compose)))
    # the load generator is applied on its own once the services are ready (a Job starts when applied)
    files["base/kustomization.yaml"] = _kustomization(["namespace", *(v.name for v in served)])
    for profile in PROFILES:
        chosen = [v.name for v in in_profile(served, profile)]
        resources = [f"../../base/{name}" for name in ["namespace", *chosen]]
        files[f"overlays/{profile}/kustomization.yaml"] = _kustomization(resources)
    return files


def committed(output: Path = OUTPUT_DIR) -> dict[str, str]:
    return {
        str(path.relative_to(output)): path.read_text()
        for directory in GENERATED_DIRS
        for path in sorted((output / directory).rglob("*"))
        if path.is_file()
    }


def differences(output: Path = OUTPUT_DIR) -> list[str]:
    """The generated files that are missing, stale or extra under ``output``."""
    wanted, found = generate(), committed(output)
    return sorted(
        [f"missing {name}" for name in wanted.keys() - found.keys()]
        + [f"extra {name}" for name in found.keys() - wanted.keys()]
        + [f"stale {name}" for name in wanted.keys() & found.keys() if wanted[name] != found[name]]
    )


def write(output: Path = OUTPUT_DIR) -> list[str]:
    wanted = generate()
    for name in committed(output).keys() - wanted.keys():
        (output / name).unlink()
    for name, text in wanted.items():
        path = output / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    for directory in GENERATED_DIRS:  # folders of variants that are gone
        for folder in sorted((output / directory).rglob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return sorted(wanted)
