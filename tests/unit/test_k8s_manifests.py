"""deploy/k8s: the committed manifests are exactly what ``python -m bench.k8s`` generates from the registry
and compose.yaml; every kustomization (the base and each overlay) renders, and every resource it renders
validates against the Kubernetes schemas (kubernetes-validate, strict: an unknown field fails too).

No cluster and no kustomize binary here, so ``render`` is a minimal kustomize: it resolves ``resources:``
(files and directories holding a kustomization, recursively), applies kustomize's rules that matter for them
(a file must lie inside its kustomization's folder, no cycles, no two resources with the same id) and refuses
every other kustomization field, so a generated kustomization that needs more than it can do fails here
instead of being half-rendered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from bench.k8s import constants, differences
from bench.k8s.compose import Compose
from bench.k8s.serving import deployable
from bench.profiles import PROFILES
from bench.registry import REPO_ROOT, in_profile, load_registry

DEPLOY = constants.OUTPUT_DIR
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources"}
ROOTS = {
    "base": DEPLOY / "base",
    "locust": DEPLOY / "base" / "locust",
    **{name: DEPLOY / "overlays" / name for name in PROFILES},
}
KUBERNETES_VERSION = latest_version()


class RenderError(AssertionError):
    pass


def resource_id(resource: dict[str, Any]) -> tuple[str, str, str, str]:
    group = resource["apiVersion"].rpartition("/")[0]
    return group, resource["kind"], resource["metadata"].get("namespace", ""), resource["metadata"]["name"]


def render(directory: Path, parents: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """The resources the kustomization in ``directory`` builds (see the module docstring)."""
    directory = directory.resolve()
    if directory in parents:
        raise RenderError(f"cycle: {' -> '.join(map(str, (*parents, directory)))}")
    file = directory / "kustomization.yaml"
    if not file.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    body = yaml.safe_load(file.read_text())
    if not isinstance(body, dict) or body.get("kind") != "Kustomization":
        raise RenderError(f"{file}: not a Kustomization")
    unsupported = set(body) - KUSTOMIZATION_KEYS
    if unsupported:
        raise RenderError(f"{file}: fields this renderer does not implement: {sorted(unsupported)}")
    resources: list[dict[str, Any]] = []
    for entry in body.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render(path, (*parents, directory)))
        elif path.is_file():
            if not path.is_relative_to(directory):
                raise RenderError(f"{file}: {entry} is a file outside the kustomization's folder")
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
        else:
            raise RenderError(f"{file}: {entry} does not exist")
    seen: set[tuple[str, str, str, str]] = set()
    for resource in resources:
        key = resource_id(resource)
        if key in seen:
            raise RenderError(f"{file}: {key} is declared twice")
        seen.add(key)
    return resources


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def compose_variants() -> dict[str, Any]:
    compose = Compose()
    return {v.name: v for v in deployable(load_registry([constants.EXTERNAL_HOOK_FILE], environ={}), compose)}


def test_committed_manifests_are_what_the_registry_and_compose_generate() -> None:
    assert differences() == [], "deploy/k8s is out of date: run `python -m bench.k8s`"


@pytest.mark.parametrize("root", sorted(ROOTS), ids=str)
def test_every_rendered_resource_validates_against_the_kubernetes_schemas(root: str) -> None:
    resources = render(ROOTS[root])
    assert resources, f"{root} renders nothing"
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{root}: {resource_id(resource)}: {error.message} at {list(error.path)}")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_overlay_runs_its_profiles_variants(profile: str) -> None:
    resources = render(ROOTS[profile])
    variants = compose_variants()
    expected = {v.name for v in in_profile(list(variants.values()), profile)}
    deployments = of_kind(resources, "Deployment")
    assert {d["metadata"]["labels"][constants.VARIANT_LABEL] for d in deployments.values()} == expected
    assert not of_kind(resources, "Job")  # the load generator is applied on its own, for each run
    assert set(of_kind(resources, "Namespace")) == {constants.NAMESPACE}
    assert {r["metadata"].get("namespace") for r in resources if r["kind"] != "Namespace"} == {
        constants.NAMESPACE
    }


def test_the_quick_overlay_is_torch_onnx_and_rust() -> None:
    deployments = of_kind(render(ROOTS["quick"]), "Deployment")
    assert sorted(d["metadata"]["labels"][constants.VARIANT_LABEL] for d in deployments.values()) == [
        "onnx",
        "rust",
        "torch",
    ]


def test_every_service_deployment_is_reachable_probed_sized_and_autoscaled() -> None:
    resources = render(ROOTS["base"])
    services, autoscalers = of_kind(resources, "Service"), of_kind(resources, "HorizontalPodAutoscaler")
    compose = Compose()
    variants = compose_variants()
    for name, deployment in of_kind(resources, "Deployment").items():
        variant = variants[deployment["metadata"]["labels"][constants.VARIANT_LABEL]]
        assert name == variant.compose_service  # in-cluster URLs are compose's: http://onnx-serving:8002
        pod = pod_spec(deployment)
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= template_labels.items()
        (container,) = pod["containers"]
        assert container["image"] == compose.image(name)
        port = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port == {"http": compose.container_port(name)}
        service = services[name]
        assert service["spec"]["selector"].items() <= template_labels.items()
        assert service["spec"]["ports"] == [{"name": "http", "port": port["http"], "targetPort": "http"}]
        # probes: alive on /health, in rotation on the variant's ready path, a cold start within the budget
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": variant.ready_path, "port": "http"}
        startup = container["startupProbe"]
        assert startup["httpGet"]["path"] == "/health"
        assert startup["periodSeconds"] * startup["failureThreshold"] >= constants.DEFAULT_START_PERIOD_S
        # the bench's core budget: requests = limits = compose's limits (1 CPU), so Guaranteed QoS
        limits = compose.limits(name)
        assert limits["cpu"] == "1"
        for box in [*pod.get("initContainers", []), container]:
            assert box["resources"] == {"requests": limits, "limits": limits}, box["name"]
        environment = {item["name"]: item["value"] for item in container["env"]}
        assert variant.settings.items() <= environment.items()
        assert compose.environment(name).items() <= environment.items()
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] > 0
        autoscaler = autoscalers[name]["spec"]
        assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= autoscaler["minReplicas"] <= autoscaler["maxReplicas"]
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it


def test_a_mounted_artifact_folder_is_filled_from_an_image_that_carries_it() -> None:
    deployment = of_kind(render(ROOTS["quick"]), "Deployment")["rust-onnx-serving"]
    pod = pod_spec(deployment)
    (copy,) = pod["initContainers"]
    assert copy["image"] == Compose().image("onnx-serving")
    assert copy["command"] == ["cp", "-R", "/app/build/artifacts/.", "/artifacts"]
    environment = {item["name"]: item["value"] for item in pod["containers"][0]["env"]}
    assert environment["ONNX_MODEL"] == "/artifacts/fused.optimized.onnx"
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/artifacts"]["readOnly"] is True


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_locust_runs_the_bench_locustfile_as_master_and_workers_against_a_service_of_each_overlay(
    profile: str,
) -> None:
    resources = render(ROOTS["locust"])
    jobs, services = of_kind(resources, "Job"), of_kind(resources, "Service")
    overlay_services = of_kind(render(ROOTS[profile]), "Service")
    settings = of_kind(resources, "ConfigMap")["locust-settings"]["data"]
    master, worker = pod_spec(jobs["locust-master"]), pod_spec(jobs["locust-worker"])
    for pod in (master, worker):
        (container,) = pod["containers"]
        assert "command" not in container  # the image's entrypoint: locust -f bench/load/locustfile.py
        assert container["image"] == Compose().image("locust-master")
    dockerfile = (REPO_ROOT / "docker" / "locust.Dockerfile").read_text()
    assert 'ENTRYPOINT ["locust", "-f", "bench/load/locustfile.py"]' in dockerfile
    master_args, worker_args = master["containers"][0]["args"], worker["containers"][0]["args"]
    assert {"--master", "--headless", "--json"} <= set(master_args)
    host = worker_args[worker_args.index("--master-host") + 1]
    master_service = services[host]
    assert (
        master_service["spec"]["selector"].items()
        <= jobs["locust-master"]["spec"]["template"]["metadata"]["labels"].items()
    )
    assert master_service["spec"]["ports"][0]["port"] == 5557  # Locust's default --master-port
    assert jobs["locust-worker"]["spec"]["parallelism"] == int(settings["LOCUST_EXPECT_WORKERS"])
    # the default target is a service of the overlay, on its port
    target = settings["LOCUST_HOST"].removeprefix("http://")
    target_name, target_port = target.split(":")
    assert overlay_services[target_name]["spec"]["ports"][0]["port"] == int(target_port)


def test_the_renderer_refuses_what_it_cannot_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"kind": "Kustomization", "resources": ["a.yaml"], "namePrefix": "x-"})
    )
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(RenderError, match="namePrefix"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"kind": "Kustomization", "resources": ["a.yaml", "a.yaml"]})
    )
    with pytest.raises(RenderError, match="twice"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"kind": "Kustomization", "resources": ["."]})
    )
    with pytest.raises(RenderError, match="cycle"):
        render(tmp_path)


def test_the_schema_check_catches_a_wrong_manifest() -> None:
    deployment = of_kind(render(ROOTS["quick"]), "Deployment")["onnx-serving"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["failureTreshold"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
