"""The registry (bench/variants.toml) is the one list of variants; what is still written by hand for people
to read (compose.yaml, .dockerignore) must agree with it, and what derives from it (the venv's requirements,
the import layers) must take a new variant without naming it. Each test names the file to fix."""

from __future__ import annotations

import configparser
import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import registry
from bench.registry import (
    BUILTIN_VARIANTS_FILE,
    VARIANTS_TOKEN,
    Variant,
    import_contracts,
    in_repo_python_packages,
    load_registry,
    load_variants_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
PYTHON_DOCKERFILE = "docker/python-variant.Dockerfile"
EXTERNAL_HOOK_FILE = REPO_ROOT / "docker" / "external.variants.toml"


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def in_repo_variants() -> list[Variant]:
    return load_variants_file(BUILTIN_VARIANTS_FILE)


def compose_variants() -> list[Variant]:
    """Every registered variant compose.yaml should run: the built-in ones, the external hook's, and any
    external/*/variants.toml that names a compose service."""
    variants = load_registry([EXTERNAL_HOOK_FILE], environ={})
    return [variant for variant in variants if variant.compose_service is not None]


@pytest.mark.parametrize("variant", compose_variants(), ids=lambda variant: variant.name)
def test_each_variants_compose_service_publishes_the_registered_port_from_its_variable(
    variant: Variant,
) -> None:
    services = compose_services()
    assert variant.compose_service in services, f"compose.yaml has no service {variant.compose_service!r}"
    ports = services[variant.compose_service].get("ports") or []
    assert variant.compose_port_env is not None, (
        f"{variant.name}: declare compose_port_env in its variants file"
    )
    pattern = re.compile(rf"^\$\{{{variant.compose_port_env}:-{variant.port}\}}:")
    assert any(pattern.match(str(port)) for port in ports), (
        f"compose.yaml service {variant.compose_service}: publish "
        f"`${{{variant.compose_port_env}:-{variant.port}}}:...` (found {ports})"
    )


@pytest.mark.parametrize(
    "variant", [v for v in in_repo_variants() if v.image is not None], ids=lambda variant: variant.name
)
def test_each_python_image_is_built_by_compose_as_the_registry_says(variant: Variant) -> None:
    service = compose_services()[variant.compose_service or ""]
    assert str(service["image"]).endswith(f":-{variant.image_tag('slim')}}}"), service["image"]
    build = service["build"]
    assert build["dockerfile"] == PYTHON_DOCKERFILE
    container_port = str(service["ports"][0]).rsplit(":", 1)[1]
    assert container_port == str(variant.port)
    args = {key: str(value) for key, value in build["args"].items()}
    assert (args["VARIANT"], args["PACKAGE"], args["PORT"]) == (
        variant.name,
        variant.python_package,
        str(variant.port),
    )


def image_owner(variant: Variant) -> Variant | None:
    """The in-repo variant whose image a Python variant without a `[variant.image]` of its own runs (the one
    with an image and the same package), or None."""
    owners = [
        other
        for other in in_repo_variants()
        if other.image is not None and other.python_package == variant.python_package
    ]
    return owners[0] if owners else None


@pytest.mark.parametrize(
    "variant",
    [v for v in in_repo_variants() if v.image is None and v.compose_service and v.python_package],
    ids=lambda variant: variant.name,
)
def test_a_variant_without_its_own_image_runs_its_packages_image_with_its_own_settings(
    variant: Variant,
) -> None:
    """onnx-fast: no second build of the same image; compose runs onnx's image, listening on onnx's port
    inside, with the settings that make it another variant (its env beyond onnx's) passed in."""
    owner = image_owner(variant)
    assert owner is not None, f"{variant.name}: no variant with an image serves {variant.python_package}"
    service, owner_service = (compose_services()[v.compose_service or ""] for v in (variant, owner))
    assert "build" not in service, (
        f"compose.yaml {variant.compose_service}: no build (it is {owner.name}'s image)"
    )
    assert service["image"] == owner_service["image"], f"compose.yaml {variant.compose_service}: image"
    assert str(service["ports"][0]).rsplit(":", 1)[1] == str(owner.port)
    assert variant.local is not None and owner.local is not None
    own = {key: value for key, value in variant.local.env.items() if owner.local.env.get(key) != value}
    environment = {key: str(value) for key, value in service["environment"].items()}
    for key, value in own.items():
        if key.endswith("_PORT"):
            continue
        assert environment.get(key) == value or environment.get(key, "").endswith(f":-{value}}}"), (
            f"compose.yaml {variant.compose_service}: environment {key} should be {value!r}"
        )


def test_every_python_service_of_compose_is_a_registered_variant() -> None:
    images = {v.compose_service: v for v in in_repo_variants() if v.image is not None}
    built_here = {
        name
        for name, service in compose_services().items()
        if (service.get("build") or {}).get("dockerfile") == PYTHON_DOCKERFILE
    }
    assert built_here == set(images), "compose.yaml and bench/variants.toml list different Python services"


def test_each_variant_keeps_its_requirements_in_its_folder_and_the_venv_installs_them() -> None:
    install = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", ".venv/.installed"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for variant in in_repo_variants():
        if variant.python_package is None:
            continue
        assert variant.requirements_path == REPO_ROOT / variant.python_package / "requirements.txt"
        text = variant.requirements_path.read_text()
        assert "-r ../requirements/serving-common.txt" in text.splitlines()
        assert f"-r {variant.python_package}/requirements.txt" in install, (
            "the Makefile's VARIANT_REQUIREMENTS"
        )


def test_pyproject_names_no_variant_and_the_expanded_layers_name_every_one() -> None:
    """A new variant is checked by the import layers without an edit to pyproject.toml."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    config = tomllib.loads(pyproject)["tool"]["importlinter"]
    packages = in_repo_python_packages(in_repo_variants())
    assert set(packages) >= {"torch_serving", "onnx_serving"}
    for package in packages:
        assert package not in str(config), f"pyproject.toml names {package}: write {VARIANTS_TOKEN} instead"

    expanded = configparser.ConfigParser()
    expanded.read_string(import_contracts(in_repo_variants()))
    assert set(expanded["importlinter"]["root_packages"].split()) >= set(packages)
    layer_contracts = [
        section for section in expanded.sections() if expanded[section].get("type") == "layers"
    ]
    assert layer_contracts, "no layers contract"
    layers = expanded[layer_contracts[0]]["layers"].strip().splitlines()
    assert " | ".join(packages) in [layer.strip() for layer in layers]


def test_a_variant_folder_added_with_its_registry_entry_joins_the_layers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for package in ("torch_serving", "extra_serving"):
        (tmp_path / package).mkdir()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.importlinter]\nroot_packages = ["bench", "{variants}"]\n'
        '[[tool.importlinter.contracts]]\nname = "layers"\ntype = "layers"\n'
        'layers = ["bench", "{variants}", "serving_core"]\n'
    )
    monkeypatch.setattr(registry, "REPO_ROOT", tmp_path)
    variants = [
        Variant(name=name, port=port, local={"command": ["{python}", "-m", package]}, root=tmp_path)
        for name, port, package in [("torch", 8001, "torch_serving"), ("extra", 8100, "extra_serving")]
    ]
    expanded = configparser.ConfigParser()
    expanded.read_string(import_contracts(variants, pyproject))
    assert expanded["importlinter"]["root_packages"].split() == ["bench", "torch_serving", "extra_serving"]
    layers = [layer.strip() for layer in expanded["importlinter:contract:1"]["layers"].strip().splitlines()]
    assert layers == ["bench", "torch_serving | extra_serving", "serving_core"]


def test_dockerignore_lets_in_every_file_an_image_copies() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]

    def let_in(path: str) -> bool:
        parts = Path(path).parts
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        return any(fnmatch.fnmatchcase(prefix, entry) for prefix in prefixes for entry in allowed)

    for variant in in_repo_variants():
        if variant.image is None:
            continue
        wanted = [variant.python_package or "", *(str(path) for path in variant.image.files)]
        assert all(let_in(path) for path in wanted), (
            f"{variant.name}: .dockerignore keeps out one of {wanted}"
        )
